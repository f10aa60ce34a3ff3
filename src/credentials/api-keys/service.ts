import type { Audit } from '../../audit/audit.ts';
import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import type { RbacSnapshot, RbacVersionSource } from '../../rbac/snapshot.ts';
import { generateApiKey } from './format.ts';
import type { ApiKeyRecord, ApiKeyStore } from './store.ts';
import type { ApiKeyVerifier } from './verifier.ts';
import type { UsageRecorder } from './usage.ts';

export interface CreateApiKey {
  name: string;
  permissions: string[];
  /** The identity the key stands for (a service); default the creator. */
  identityId?: string;
  expiresInSeconds?: number;
  allowedCidrs?: string[];
  rateLimitPerMinute?: number;
}

/** The public shape of a key (never its secret or hash). */
export const presentApiKey = (k: ApiKeyRecord) => ({
  id: k.id,
  name: k.name,
  prefix: k.displayPrefix,
  identityId: k.identityId,
  createdBy: k.createdBy,
  permissions: k.permissions,
  allowedCidrs: k.allowedCidrs,
  rateLimitPerMinute: k.rateLimitPerMinute,
  expiresAt: k.expiresAt === null ? null : new Date(k.expiresAt).toISOString(),
  revokedAt: k.revokedAt === null ? null : new Date(k.revokedAt).toISOString(),
  rotatedFrom: k.rotatedFrom,
  replacedBy: k.replacedBy,
  createdAt: new Date(k.createdAt).toISOString(),
});

/**
 * Creating, rotating and revoking keys. Permissions must be a subset of the creator's (held
 * globally, checked against the RBAC snapshot now, and again on every use: a creator who loses a
 * permission takes it from their keys). Every change is audited and, when it can end a key's
 * validity, bumps the API-key version after the commit (every process reloads at once).
 */
export function createApiKeyService(o: {
  store: ApiKeyStore;
  clock: Clock;
  audit: Audit;
  rbac: RbacSnapshot;
  version: RbacVersionSource;
  verifier: ApiKeyVerifier;
  usage: UsageRecorder;
}) {
  const { store, clock, audit } = o;

  const announce = async () => {
    o.verifier.forget();
    await o.version.bump();
  };

  async function checkSubset(creator: string, permissions: string[]) {
    for (const p of permissions) {
      const r = await o.rbac.resolve(creator, p);
      if (!r.via) throw new AppError('PERMISSION_DENIED', { detail: `permissions: you do not hold ${r.known ? p : 'one of them'}` });
    }
  }

  return {
    store,
    /**
     * An identity was locked, unlocked, disabled, enabled or deleted: every process drops its
     * verified keys (they are reloaded with the identity's state on their next use).
     */
    identityChanged: announce,
    async create(creator: string, b: CreateApiKey) {
      const permissions = [...new Set(b.permissions)].sort();
      await checkSubset(creator, permissions);
      const g = generateApiKey();
      const now = clock.now();
      const k = await store.create(
        {
          identityId: b.identityId ?? creator,
          createdBy: creator,
          name: b.name,
          displayPrefix: g.display,
          secretHash: g.hash,
          permissions,
          allowedCidrs: b.allowedCidrs ?? [],
          rateLimitPerMinute: b.rateLimitPerMinute ?? null,
          expiresAt: b.expiresInSeconds ? now + b.expiresInSeconds * 1000 : null,
        },
        now,
      );
      await audit.append({ type: 'api_key.created', actor: creator, subject: k.id, reason: k.identityId === creator ? 'SELF' : 'FOR_IDENTITY', data: { identity: k.identityId, permissions, expiresAt: presentApiKey(k).expiresAt, allowedCidrs: k.allowedCidrs } });
      return { key: g.key, record: k };
    },

    /** Rotation with overlap: the new key now, the old one until min(its expiry, now + overlap). Null: lost a race or not live. */
    async rotate(actor: string, old: ApiKeyRecord, overlapSeconds: number) {
      await checkSubset(old.createdBy, old.permissions);
      const g = generateApiKey();
      const now = clock.now();
      const r = await store.rotate(
        old.id,
        {
          identityId: old.identityId,
          createdBy: old.createdBy,
          name: old.name,
          displayPrefix: g.display,
          secretHash: g.hash,
          permissions: old.permissions,
          allowedCidrs: old.allowedCidrs,
          rateLimitPerMinute: old.rateLimitPerMinute,
          // The new key lives as long as the old one was meant to, counted from now.
          expiresAt: old.expiresAt === null ? null : now + (old.expiresAt - old.createdAt),
        },
        now + overlapSeconds * 1000,
        now,
      );
      if (!r) return null;
      await announce();
      await audit.append({ type: 'api_key.rotated', actor, subject: old.id, reason: 'ROTATED', data: { replacedBy: r.fresh.id, oldExpiresAt: presentApiKey(r.old).expiresAt } });
      return { key: g.key, record: r.fresh, old: r.old };
    },

    /** Revocation, at once in every process. Null: it was already revoked (a concurrent revoke won). */
    async revoke(actor: string, id: string, reason: string) {
      const k = await store.revoke(id, reason, clock.now());
      if (!k) return null;
      await announce();
      await audit.append({ type: 'api_key.revoked', actor, subject: id, reason });
      return k;
    },

    async usageOf(id: string) {
      await o.usage.flush();
      return store.usage(id, new Date(clock.now() - 30 * 86_400_000).toISOString().slice(0, 10));
    },
  };
}

export type ApiKeyService = ReturnType<typeof createApiKeyService>;
