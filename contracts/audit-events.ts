/**
 * Every audit event type, in one place: `<noun>.<past-verb>`, one name per happening (no
 * synonyms: a WebAuthn credential is a second factor, so it is `mfa.enrolled`, with the factor
 * type as the reason). `audit.append` takes only these. This folder imports nothing from src/.
 *
 * Adding one: add it here with a line saying when it is written; tests and readers of the chain
 * (exports, alerts) match on these strings, so renaming one is a breaking change.
 */
export const AUDIT_EVENT_TYPES = [
  // Sign-in (one per login_events row, except risk.decided)
  'login.failed', // a wrong password or passkey; reason INVALID_CREDENTIALS | WEBAUTHN_FAILED
  'login.locked', // the flow (or the account) locked after too many attempts
  'login.stepped_up', // risk asked for a second factor; reason: the risk reasons
  'login.denied', // refused after the user proved who they are; reason: the LOGIN_DENIED reason
  'login.succeeded', // a session exists for the login (written only after it does)
  'login.reported_fraudulent', // the user followed the new-device notice's "this wasn't me" link
  'risk.decided', // the risk scorer's decision for a login attempt
  // Risk policies and feedback (the security team's API)
  'risk_policy.created', // a new immutable policy version
  'risk_policy.activated', // a version became the enforced one
  'risk_policy.shadowed', // a version scores every login beside the active one, never enforced
  'risk_policy.shadow_cleared', // shadow scoring was turned off
  'risk_event.labelled', // an analyst, the user's report or a completed step-up labelled a login
  'backtest.requested', // a back-test job was queued (policy version or document, input kind)
  // Second factors
  'mfa.enrolment_started', // a TOTP secret or a phone/email binding was begun
  'mfa.enrolled', // a factor was confirmed (reason: TOTP | SMS | EMAIL | WEBAUTHN)
  'mfa.renamed',
  'mfa.removed',
  'mfa.challenge_failed', // a wrong second factor during a login or step-up
  'mfa.locked', // the second-factor budget of a flow was spent
  'mfa.code_sent', // an SMS or email code was sent (reason: the channel)
  'recovery_codes.generated', // reason FIRST_FACTOR | REGENERATED
  'webauthn.clone_suspected', // an authenticator's signature counter went backwards
  // Sessions and step-up
  'session.created',
  'session.revoked', // reason EVICTED (cap), REFRESH_REUSE, …
  'session.locked',
  'session.unlocked',
  'session.stepped_up', // a live session was raised by a step-up flow (its id rotated)
  'stepup.started', // a step-up flow was begun for a live session
  'flow.refused', // a flow id presented by another browser (reason OTHER_DEVICE) or session (OTHER_SESSION)
  // Refresh tokens
  'refresh.issued',
  'refresh.refused',
  'refresh.reuse_detected',
  'refresh.family_revoked',
  // Accounts and access
  'user.created',
  'user.locked',
  'user.unlocked',
  'password.changed',
  'authorization.denied', // a refused authorization (reason PERMISSION_DENIED | PERMISSION_UNKNOWN | STEP_UP_REQUIRED | REQUIREMENT_UNMET)
  'authorization.granted', // granted authorizations, aggregated: one per identity, credential kind, permission and namespace per flush (data.count, first, last)
  'api_key.created', // a key was created (reason SELF | FOR_IDENTITY; data: identity, permissions, expiry, allow-list)
  'api_key.rotated', // a key was replaced by a new one; the old one works until the overlap ends
  'api_key.revoked', // a key was revoked (reason OWNER | CREATOR | ADMIN)
  'api_key.refused', // a known key was refused (reason REVOKED | EXPIRED | IDENTITY_INACTIVE | ADDRESS_REFUSED | RATE_LIMITED), once per key, reason and 5 min
  'user.roles_changed', // an administrator bound or unbound a role (data.before, data.after)
  'user.permissions_changed', // an administrator granted or withdrew a direct permission (data.before, data.after)
] as const;

export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

/** Whether a stored string is a known audit type (e.g. for readers of old chains). */
export const isAuditEventType = (s: string): s is AuditEventType => (AUDIT_EVENT_TYPES as readonly string[]).includes(s);
