import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import type { Db, Queryable } from '../../db/db.ts';
import { isUniqueViolation } from '../../db/db.ts';
import type { Audit, AuditEvent } from '../../audit/audit.ts';
import type { MfaMethod } from '../../../machines/types.ts';
import type { ExternalAssertion, FederatedResult, FederationRefusal } from './assertion.ts';
import type { ProviderRow } from './providers.ts';
import { emailDomain } from './organisations.ts';
import { federatedAmr, upstreamProvesMfa } from './amr.ts';
import { syncMappedRoles } from './roles.ts';

interface Resolved {
  identityId: string;
  events: AuditEvent[];
}
class Refused extends Error {
  constructor(readonly reason: FederationRefusal) {
    super(reason);
  }
}

/**
 * Identity resolution for a verified external assertion, in this order: the external subject's
 * existing link; else a new account (JIT provisioning, when on and the domain allowed); else a
 * link to the existing account with that email, only when the IdP asserted the address verified
 * AND the provider allows linking by it. Anything else is a refusal, said the same way whether or
 * not a local account has that email. Stops account takeover through an IdP that lets people
 * claim any address, and silent linking.
 */
export function createIdentityResolver(deps: {
  db: Db;
  clock: Clock;
  audit: Audit;
  methodsOf: (identityId: string) => Promise<MfaMethod[]>;
  /** RBAC changed (src/rbac/snapshot.ts): called after a mapped role was given or taken. */
  rolesChanged: () => Promise<void>;
}) {
  const { db, clock } = deps;

  async function link(q: Queryable, p: ProviderRow, a: ExternalAssertion): Promise<Resolved> {
    const found = await q.query<{ identity_id: string }>('SELECT identity_id FROM external_identities WHERE issuer = $1 AND subject = $2', [a.issuer, a.subject]);
    if (found.rows[0]) return { identityId: found.rows[0].identity_id, events: [] };
    if (!a.email) throw new Refused('NO_LINKED_ACCOUNT');
    const existing = await q.query<{ id: string }>('SELECT id FROM identities WHERE email = $1', [a.email]);
    const base = { provider: p.slug, issuer: a.issuer, protocol: a.protocol };
    let identityId: string;
    let events: AuditEvent[];
    if (existing.rows[0]) {
      if (!(p.link_by_verified_email && a.emailVerified)) throw new Refused('NO_LINKED_ACCOUNT');
      identityId = existing.rows[0].id;
      events = [{ type: 'federation.linked', actor: `idp:${p.slug}`, subject: identityId, reason: 'VERIFIED_EMAIL', data: base }];
    } else {
      if (!p.jit_provisioning) throw new Refused('NO_LINKED_ACCOUNT');
      identityId = randomUUID();
      await q.query('INSERT INTO identities (id, email, display_name, email_verified, created_at) VALUES ($1, $2, $3, $4, $5)', [
        identityId, a.email, a.name?.slice(0, 200) ?? null, a.emailVerified, new Date(clock.now()),
      ]);
      events = [
        { type: 'user.created', actor: `idp:${p.slug}`, subject: identityId, reason: 'JIT', data: base },
        { type: 'federation.linked', actor: `idp:${p.slug}`, subject: identityId, reason: 'JIT', data: base },
      ];
    }
    await q.query(
      `INSERT INTO external_identities (id, identity_id, issuer, subject, auth_protocol, provider_id, email, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [randomUUID(), identityId, a.issuer, a.subject, a.protocol, p.id, a.email, new Date(clock.now())],
    );
    return { identityId, events };
  }

  async function attempt(a: ExternalAssertion): Promise<{ identityId: string; amr: string[]; upstreamMfa: boolean; events: AuditEvent[] }> {
    return db.tx(async (q) => {
      const p = (await q.query<ProviderRow>('SELECT * FROM identity_providers WHERE id = $1', [a.providerId])).rows[0];
      if (!p || !p.enabled) throw new Refused('PROVIDER_DISABLED');
      const domain = a.email ? emailDomain(a.email) : null;
      if (p.allowed_email_domains.length && (!domain || !p.allowed_email_domains.includes(domain))) throw new Refused('DOMAIN_NOT_ALLOWED');
      const r = await link(q, p, a);
      const nowSec = Math.floor(clock.now() / 1000);
      const upstreamMfa = upstreamProvesMfa(p, a, nowSec);
      // What the IdP said this time is recorded (never trusted beyond the provider's settings).
      await q.query(
        `UPDATE external_identities SET last_login_at = $3, email = $4, mfa_verified = $5, upstream_amr = $6::jsonb, upstream_acr = $7, provider_id = $8
          WHERE issuer = $1 AND subject = $2`,
        [a.issuer, a.subject, new Date(clock.now()), a.email, upstreamMfa, JSON.stringify(a.upstreamAmr), a.upstreamAcr, p.id],
      );
      const usable = await q.query(
        "SELECT 1 FROM identities WHERE id = $1 AND status = 'active' AND (locked_at IS NULL OR (locked_until IS NOT NULL AND locked_until <= $2))",
        [r.identityId, new Date(clock.now())],
      );
      if (!usable.rowCount) throw new Refused('ACCOUNT_UNUSABLE');
      const roleEvents = await syncMappedRoles(q, { identityId: r.identityId, providerId: p.id, providerSlug: p.slug, groups: a.groups });
      return { identityId: r.identityId, amr: federatedAmr(p, a, nowSec), upstreamMfa, events: [...r.events, ...roleEvents] };
    });
  }

  return {
    /** Resolves (and links, provisions, maps roles for) the person an IdP vouched for; audited. */
    async resolve(a: ExternalAssertion, expectedProviderId: string): Promise<FederatedResult> {
      const refuse = async (reason: FederationRefusal): Promise<FederatedResult> => {
        await deps.audit.append({
          type: 'federation.refused',
          actor: `idp:${a.providerId}`,
          subject: null,
          reason,
          data: { provider: a.providerId, issuer: a.issuer, protocol: a.protocol, emailDomain: a.email ? emailDomain(a.email) : null },
        });
        return { ok: false, reason };
      };
      // The flow was started for one provider; an assertion from another is a mix-up.
      if (a.providerId !== expectedProviderId) return refuse('PROVIDER_MISMATCH');
      for (let i = 0; ; i++) {
        try {
          const r = await attempt(a);
          await deps.audit.appendMany(r.events);
          if (r.events.some((e) => e.type === 'user.roles_changed')) await deps.rolesChanged();
          return { ok: true, identityId: r.identityId, methods: await deps.methodsOf(r.identityId), amr: r.amr, upstreamMfa: r.upstreamMfa, upstreamAuthTime: a.authTime };
        } catch (e) {
          if (e instanceof Refused) return refuse(e.reason);
          // Two first logins of one subject at once: the loser finds the winner's link next time.
          if (isUniqueViolation(e) && i === 0) continue;
          throw e;
        }
      }
    },
  };
}

export type IdentityResolver = ReturnType<typeof createIdentityResolver>;
