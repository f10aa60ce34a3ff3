import type { Audit, AuditEvent } from '../audit/audit.ts';
import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { RbacSnapshot } from '../rbac/snapshot.ts';
import type { AnyPrincipal } from '../principals/types.ts';
import { checkRequirement, type Decision } from './decision.ts';

/**
 * One authorization for every kind of principal, audited.
 *
 *   RBAC (src/rbac/snapshot.ts: ADMIN, then direct permissions, then role permissions, each
 *   global or in the namespace asked) → the credential's own limit (an API key's permission
 *   list) → the permission's requirement (`amr`, `maxAge`; an ADMIN is challenged like anyone).
 *
 * A machine credential cannot step up, so a requirement it does not meet is a plain 403.
 *
 * Audit: every refusal is written (`authorization.denied`, reason PERMISSION_DENIED,
 * PERMISSION_UNKNOWN, STEP_UP_REQUIRED or REQUIREMENT_UNMET); forward-auth, asked on every
 * proxied request, writes the same refusal at most once per window. Successes are aggregated,
 * not written per request: counted in memory per (identity, credential kind, permission,
 * namespace) and written as one `authorization.granted` event per key with `count`, `first`,
 * `last` every `flushMs` (and on close), so a hot path costs a map update.
 */
export interface CheckResult {
  decision: Decision;
  /** The asker holds ADMIN where asked: a refusal may say PERMISSION_UNKNOWN to them. */
  admin: boolean;
}

export interface CheckOptions {
  namespace?: string;
  /** The route asked for, recorded with a refusal. */
  route?: string;
  /** Write the same refusal at most once per window (forward-auth). */
  windowed?: boolean;
  /** More for the refusal's audit data (e.g. forward-auth's `via` and original `uri`). */
  data?: Record<string, string>;
}

export interface Authorizer {
  check(p: AnyPrincipal, permission: string, o?: CheckOptions): Promise<CheckResult>;
  /** Write the aggregated successes now. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface AuthorizerOptions {
  snapshot: RbacSnapshot;
  clock: Clock;
  audit: Audit;
  logger: Logger;
  /** How often aggregated successes are written. Default 60 s. */
  flushMs?: number;
  /** Window in which the same windowed refusal is written once. Default 5 min. */
  denialWindowMs?: number;
  /** Distinct aggregation keys held before an early flush. Default 10 000. */
  maxKeys?: number;
}

interface Tally {
  actor: string;
  permission: string;
  namespace: string | null;
  via: string;
  count: number;
  first: number;
  last: number;
}

const credentialOf = (p: AnyPrincipal) => (p.kind === 'session' ? { session: p.sessionId } : { credential: `${p.kind}:${p.credentialId}` });

export function createAuthorizer(o: AuthorizerOptions): Authorizer {
  const { snapshot, clock, audit, logger } = o;
  const flushMs = o.flushMs ?? 60_000;
  const windowMs = o.denialWindowMs ?? 5 * 60_000;
  const maxKeys = o.maxKeys ?? 10_000;
  let tallies = new Map<string, Tally>();
  const seen = new Map<string, number>();

  const flush = async () => {
    if (tallies.size === 0) return;
    const batch = [...tallies.values()];
    tallies = new Map();
    const events: AuditEvent[] = batch.map((t) => ({
      type: 'authorization.granted',
      actor: t.actor,
      subject: t.permission,
      reason: 'AGGREGATED',
      data: { count: t.count, first: new Date(t.first).toISOString(), last: new Date(t.last).toISOString(), via: t.via, ...(t.namespace ? { namespace: t.namespace } : {}) },
    }));
    await audit.appendMany(events).catch((err) => logger.error({ err, events: events.length }, 'audit of granted authorizations failed'));
  };
  const timer = setInterval(() => void flush(), flushMs);
  timer.unref?.();

  const granted = (p: AnyPrincipal, permission: string, namespace: string | undefined) => {
    const now = clock.now();
    const k = `${p.identityId}\n${p.via}\n${permission}\n${namespace ?? ''}`;
    const t = tallies.get(k);
    if (t) {
      t.count++;
      t.last = now;
      return;
    }
    tallies.set(k, { actor: p.identityId, permission, namespace: namespace ?? null, via: p.via, count: 1, first: now, last: now });
    if (tallies.size >= maxKeys) void flush();
  };

  const denied = async (p: AnyPrincipal, permission: string, reason: string, o: CheckOptions) => {
    const cred = credentialOf(p);
    if (o.windowed) {
      const now = clock.now();
      const k = `${Object.values(cred)[0]}\n${permission}\n${o.namespace ?? ''}\n${reason}`;
      const last = seen.get(k);
      if (last !== undefined && now - last < windowMs) return;
      seen.delete(k);
      seen.set(k, now);
      while (seen.size > maxKeys) seen.delete(seen.keys().next().value as string);
    }
    const write = audit.append({
      type: 'authorization.denied',
      actor: p.identityId,
      subject: permission,
      reason,
      data: { ...cred, via: p.via, ...(o.namespace ? { namespace: o.namespace } : {}), ...(o.route ? { route: o.route } : {}), ...o.data },
    });
    // Forward-auth answers without waiting for the audit write; everything else waits for it.
    if (o.windowed) void write.catch((err) => logger.error({ err }, 'audit of a refusal failed'));
    else await write;
  };

  return {
    async check(p, permission, opts = {}) {
      const subject = p.kind === 'session' ? p.identityId : (p.authority ?? p.identityId);
      const r = await snapshot.resolve(subject, permission, opts.namespace, p.kind === 'session' ? undefined : p.bindings);
      let decision: Decision;
      let reason: string;
      const inScope = p.kind === 'session' || !p.scope || p.scope.includes(permission);
      if (!r.known) {
        decision = { allow: false, code: 'PERMISSION_DENIED', unknown: true };
        reason = 'PERMISSION_UNKNOWN';
      } else if (!r.via || !inScope) {
        decision = { allow: false, code: 'PERMISSION_DENIED' };
        reason = 'PERMISSION_DENIED';
      } else {
        decision = checkRequirement(p, r.requirement, Math.floor(clock.now() / 1000));
        reason = decision.allow ? '' : decision.code;
        if (!decision.allow && p.kind !== 'session') {
          decision = { allow: false, code: 'PERMISSION_DENIED' };
          reason = 'REQUIREMENT_UNMET';
        }
      }
      if (decision.allow) granted(p, permission, opts.namespace);
      else await denied(p, permission, reason, opts);
      // Told PERMISSION_UNKNOWN only to whoever may see every permission: an ADMIN's own session (or
      // an unlimited credential of theirs). A key an ADMIN made with a short permission list must
      // not become an oracle of permission names.
      return { decision, admin: r.admin && (p.kind === 'session' || !p.scope) };
    },
    flush,
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}
