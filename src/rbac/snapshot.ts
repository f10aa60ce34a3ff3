import type { Redis } from 'ioredis';
import { withTimeout } from '../jobs/jobs.ts';
import type { Clock } from '../clock.ts';
import type { Queryable } from '../db/db.ts';
import type { Requirement } from './rbac.ts';

/**
 * The RBAC model held in memory, so an authorization is a few map lookups instead of a join per
 * request: permissions with their requirements and role → permissions, loaded whole (they are
 * small), and each identity's roles, loaded on first use and kept in a bounded LRU.
 *
 * Freshness: every change to roles, permissions or grants bumps a version (`bump`); every
 * authorization first reads the current version (`sync`, one Redis GET, pipelined with the
 * revocation deny-list read of the same request) and reloads when it moved. A role change made
 * by one API process is therefore seen by every other process's next authorization. Changes made
 * behind the application's back (SQL by hand) are picked up within `maxAgeMs` (default 60 s),
 * and when the version cannot be read (Redis down) the snapshot is reloaded on every call: slower,
 * never stale.
 */
export interface RbacVersionSource {
  /** The current version; throws when it cannot be known. */
  current(): Promise<number>;
  /** Announce a change (after it committed). */
  bump(): Promise<void>;
}

/**
 * One counter for all processes, in Redis (`threshold:rbac:version`). A read that takes longer
 * than `timeoutMs` counts as unknown (the snapshot then reloads from Postgres), never as current.
 */
export function redisVersionSource(redis: Redis, key = 'threshold:rbac:version', timeoutMs = 100): RbacVersionSource {
  return {
    async current() {
      const v = await withTimeout(redis.get(key), timeoutMs, () => new Error('rbac version: no answer in time'));
      const n = v === null ? 0 : Number(v);
      if (!Number.isSafeInteger(n)) throw new Error('rbac version: not a number');
      return n;
    },
    async bump() {
      await redis.incr(key);
    },
  };
}

/** The embedded default: one process, so a counter in memory is the whole truth. */
export function memoryVersionSource(): RbacVersionSource {
  let v = 0;
  return {
    current: async () => v,
    bump: async () => {
      v++;
    },
  };
}

export interface RbacSnapshot {
  /** Make sure the model is at the current version (reloading when it moved or is too old). */
  sync(): Promise<void>;
  rolesOf(identityId: string): Promise<string[]>;
  /** The identity's permissions with their requirements, sorted by name. */
  permissionsOf(identityId: string): Promise<{ name: string; requirement: Requirement | null }[]>;
  /** Roles and permissions together, after one version read. */
  accessOf(identityId: string): Promise<{ roles: string[]; permissions: { name: string; requirement: Requirement | null }[] }>;
  /** The requirement of a permission the identity holds (null: none), or undefined when it does not hold it. */
  grant(identityId: string, permission: string): Promise<Requirement | null | undefined>;
  /** The requirement of a permission one of these roles grants (null: none), or undefined (workload principals hold roles, not an identity). */
  grantForRoles(roles: string[], permission: string): Promise<Requirement | null | undefined>;
  /** Whether a permission of this name exists at all. */
  known(permission: string): Promise<boolean>;
  /** Announce a change to roles, permissions or grants (call after it committed). */
  bump(): Promise<void>;
  readonly version: number;
}

interface Model {
  version: number;
  loadedAt: number;
  requirements: Map<string, Requirement | null>;
  roleGrants: Map<string, string[]>;
  userRoles: Map<string, string[]>;
}

export function createRbacSnapshot(o: {
  db: Queryable;
  clock: Clock;
  source: RbacVersionSource;
  maxAgeMs?: number;
  /** Identities whose roles are kept; the least recently used goes first. */
  maxIdentities?: number;
}): RbacSnapshot {
  const maxAgeMs = o.maxAgeMs ?? 60_000;
  const maxIdentities = o.maxIdentities ?? 100_000;
  let model: Model | null = null;
  let loading: { version: number; p: Promise<Model> } | null = null;

  async function load(version: number): Promise<Model> {
    const [perms, grants] = await Promise.all([
      o.db.query<{ name: string; requirement: Requirement | null }>('SELECT name, requirement FROM permissions'),
      o.db.query<{ role: string; permission: string }>('SELECT role, permission FROM role_permissions ORDER BY role, permission'),
    ]);
    const roleGrants = new Map<string, string[]>();
    for (const g of grants.rows) roleGrants.set(g.role, [...(roleGrants.get(g.role) ?? []), g.permission]);
    return {
      version,
      loadedAt: o.clock.now(),
      requirements: new Map(perms.rows.map((p) => [p.name, p.requirement ?? null])),
      roleGrants,
      userRoles: new Map(),
    };
  }

  /**
   * A model at least as new as the version read now. Concurrent callers that read the same
   * version share one load; a caller that read a newer version never settles for an older load.
   */
  async function sync(): Promise<Model> {
    let version: number;
    try {
      version = await o.source.current();
    } catch {
      version = Number.NaN; // unknown: never trust what is held, reload
    }
    const known = !Number.isNaN(version);
    const m = model;
    if (m && known && m.version === version && o.clock.now() - m.loadedAt < maxAgeMs) return m;
    if (!(known && loading && loading.version === version)) {
      const p = load(version);
      const entry = { version, p };
      loading = entry;
      p.then(
        () => {
          if (loading === entry) loading = null;
        },
        () => {
          if (loading === entry) loading = null;
        },
      );
    }
    const fresh = await loading!.p;
    if (!model || fresh.loadedAt >= model.loadedAt) model = fresh;
    return fresh;
  }

  async function rolesIn(m: Model, identityId: string): Promise<string[]> {
    const held = m.userRoles.get(identityId);
    if (held) {
      m.userRoles.delete(identityId);
      m.userRoles.set(identityId, held);
      return held;
    }
    const { rows } = await o.db.query<{ role: string }>('SELECT role FROM user_roles WHERE identity_id = $1 ORDER BY role', [identityId]);
    const roles = rows.map((r) => r.role);
    // Only into the model it was read for: a newer model starts empty and reads again.
    m.userRoles.set(identityId, roles);
    while (m.userRoles.size > maxIdentities) m.userRoles.delete(m.userRoles.keys().next().value as string);
    return roles;
  }

  function permissionsIn(m: Model, roles: string[]) {
    const names = new Set<string>();
    for (const r of roles) for (const p of m.roleGrants.get(r) ?? []) if (m.requirements.has(p)) names.add(p);
    return [...names].sort().map((name) => ({ name, requirement: m.requirements.get(name) ?? null }));
  }

  return {
    sync: async () => {
      await sync();
    },
    async rolesOf(identityId) {
      const m = await sync();
      return [...(await rolesIn(m, identityId))];
    },
    async permissionsOf(identityId) {
      const m = await sync();
      return permissionsIn(m, await rolesIn(m, identityId));
    },
    async accessOf(identityId) {
      const m = await sync();
      const roles = await rolesIn(m, identityId);
      return { roles: [...roles], permissions: permissionsIn(m, roles) };
    },
    async grant(identityId, permission) {
      const m = await sync();
      if (!m.requirements.has(permission)) return undefined;
      for (const r of await rolesIn(m, identityId)) if (m.roleGrants.get(r)?.includes(permission)) return m.requirements.get(permission) ?? null;
      return undefined;
    },
    async grantForRoles(roles, permission) {
      const m = await sync();
      if (!m.requirements.has(permission)) return undefined;
      return roles.some((r) => m.roleGrants.get(r)?.includes(permission)) ? (m.requirements.get(permission) ?? null) : undefined;
    },
    async known(permission) {
      return (await sync()).requirements.has(permission);
    },
    async bump() {
      await o.source.bump();
    },
    get version() {
      return model?.version ?? -1;
    },
  };
}
