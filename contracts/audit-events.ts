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
  'remembered_device.created', // after a passed step-up the user chose to remember the device (reason DAYS_<n>)
  'remembered_device.revoked', // a remembered device was forgotten: reason USER | TOKEN_REUSE | USER_REPORT | REPLACED | RECOVERY (a password change forgets them in its own statement)
  'flow.refused', // a flow id presented by another browser (reason OTHER_DEVICE) or session (OTHER_SESSION)
  // Refresh tokens
  'refresh.issued',
  'refresh.refused',
  'refresh.reuse_detected',
  'refresh.family_revoked',
  // Federation: trusted token issuers (src/authn/trusted-issuers)
  'token_exchange.refused', // an RFC 8693 exchange or `okta` scheme token refused; reason: UNTRUSTED_ISSUER, WRONG_AUDIENCE, EXPIRED, SUBJECT_TOKEN_REPLAYED, FED_SUBJECT_NOT_LINKED, …
  'trusted_issuer.created', // an admin (or TRUSTED_ISSUERS_FILE at start) added a trusted token issuer
  'trusted_issuer.updated', // an admin changed one (data: before/after)
  'trusted_issuer.deleted', // an admin removed one
  'machine_client.created', // an admin registered a client_credentials client (its secret shown once)
  'machine_client.deleted', // an admin removed one
  'client_credentials.refused', // a client_credentials grant was refused; reason INVALID_CLIENT | DISABLED | INVALID_SCOPE
  // Accounts and access
  'user.created', // reason ADMIN | CLI | BOOTSTRAP_ADMIN | SIGNUP (a self-service sign-up created an unverified identity)
  'signup.requested', // a sign-up named an address that already has an account (reason EXISTING_ACCOUNT): its owner was told
  'signup.denied', // the risk assessment refused a sign-up; reason: the risk reasons
  'email.verified', // the identity proved its address with a code (reason SIGNUP, or SESSION: a signed-in user, POST /auth/email/verification)
  'user.locked',
  'user.unlocked',
  'user.updated', // an admin changed a user's email or display name; data { before, after }
  'user.disabled', // an admin disabled an account (its sessions and refresh families end); data { before, after }
  'user.enabled', // an admin re-enabled a disabled account; data { before, after }
  'user.deleted', // an admin deleted an account with its sessions, factors and grants; data { before }
  'role.created', // an admin created a role; data { after: { name, description, permissions } }
  'role.updated', // an admin changed a role's description or permissions; data { before, after }
  'role.deleted', // an admin deleted a role no one held; data { before }
  'audit.exported', // an admin exported audit events as JSONL; data { filters, rows }
  'password.flagged', // a password proven at sign-in was found breached (reason BREACHED): a change is required
  'password.changed', // reason END_OTHER_SESSIONS | KEEP_SESSIONS (the user) | RECOVERY (account recovery)
  'recovery.requested', // account recovery asked for (reason USER | ADMIN); subject null for an unknown identifier, data.sent says whether a link went out
  'recovery.link_failed', // a wrong, used or expired recovery link was presented to a recovery flow
  'recovery.denied', // the recovery was refused after the link was proven (reason RISK_DENIED | MFA_REQUIRED_NO_FACTOR)
  'recovery.locked', // the recovery flow spent its link or second-factor budget
  'recovery.completed', // a new password was set through recovery; every session and refresh family ended
  'authorization.denied', // a refused authorization (reason PERMISSION_DENIED | PERMISSION_UNKNOWN | STEP_UP_REQUIRED | REQUIREMENT_UNMET)
  'authorization.granted', // granted authorizations, aggregated: one per identity, credential kind, permission and namespace per flush (data.count, first, last)
  'api_key.created', // a key was created (reason SELF | FOR_IDENTITY; data: identity, permissions, expiry, allow-list)
  'api_key.rotated', // a key was replaced by a new one; the old one works until the overlap ends
  'api_key.revoked', // a key was revoked (reason OWNER | CREATOR | ADMIN)
  'api_key.refused', // a known key was refused (reason REVOKED | EXPIRED | IDENTITY_INACTIVE | ADDRESS_REFUSED | RATE_LIMITED), or an address past its wrong-key budget (TOO_MANY_WRONG_KEYS, no subject); once per key (or address), reason and 5 min
  'user.roles_changed', // an administrator bound or unbound a role (data.before, data.after)
  'user.permissions_changed', // an administrator granted or withdrew a direct permission (data.before, data.after)
] as const;

export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

/** Whether a stored string is a known audit type (e.g. for readers of old chains). */
export const isAuditEventType = (s: string): s is AuditEventType => (AUDIT_EVENT_TYPES as readonly string[]).includes(s);
