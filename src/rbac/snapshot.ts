import type { Redis } from 'ioredis';
import { withTimeout } from '../jobs/jobs.ts';
import type { Clock } from '../clock.ts';
import type { Queryable } from '../db/db.ts';
import type { Requirement } from '../authz/decision.ts';

/**
 * The RBAC model held in memory, so an authorization is a few map lookups instead of a join per
 * request: permissions with their requirements and role → permissions, loaded whole (they are
 * small), and each identity's role bindings and direct permissions (user_roles, user_permissions,
 * each global or scoped to a namespace), loaded on first use and kept in a bounded LRU.
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

/** A role held by an identity, globally (`namespace` null) or in one namespace. */
export interface RoleBinding {
  role: string;
  namespace: string | null;
}
/** A permission held by an identity directly, globally or in one namespace. */
export interface DirectGrant {
  permission: string;
  namespace: string | null;
}
export type PermissionView = { name: string; requirement: Requirement | null };

/** The answer to "may this identity use this permission here?", before requirements are checked. */
export interface Resolution {
  /** A permission of that name exists. */
  known: boolean;
  /** The identity holds ADMIN where asked (globally, or in the namespace). */
  admin: boolean;
  /** How it is granted (undefined: it is not). */
  via?: 'ADMIN' | 'DIRECT' | 'ROLE';
  requirement: Requirement | null;
}

/** The role that is allowed everything (requirements still apply). */
export const ADMIN_ROLE = 'ADMIN';

export interface RbacSnapshot {
  /** Make sure the model is at the current version (reloading when it moved or is too old). */
  sync(): Promise<void>;
  /** Roles held globally (namespace-less bindings), sorted. */
  rolesOf(identityId: string): Promise<string[]>;
  /** Every role binding and direct permission of the identity. */
  bindingsOf(identityId: string): Promise<{ roles: RoleBinding[]; permissions: DirectGrant[] }>;
  /** The identity's permissions (globally, or in `namespace`), sorted by name; ADMIN holds all. */
  permissionsOf(identityId: string, namespace?: string): Promise<PermissionView[]>;
  /** Roles and permissions together, after one version read. */
  accessOf(identityId: string, namespace?: string): Promise<{ roles: string[]; permissions: PermissionView[] }>;
  /** The requirement of a permission the identity holds (null: none), or undefined when it does not hold it. */
  grant(identityId: string, permission: string, namespace?: string): Promise<Requirement | null | undefined>;
  /**
   * The RBAC answer as drawn: ADMIN allows everything; then direct permissions; then role
   * permissions. A binding with a namespace counts only for that namespace; one without counts
   * everywhere. `extra` bindings come from the credential (a service-account mapping).
   */
  resolve(identityId: string, permission: string, namespace?: string, extra?: readonly RoleBinding[]): Promise<Resolution>;
  /** Whether a permission of this name exists at all. */
  known(permission: string): Promise<boolean>;
  /** Announce a change to roles, permissions or grants (call after it committed). */
  bump(): Promise<void>;
  readonly version: number;
}

interface Access {
  roles: RoleBinding[];
  direct: DirectGrant[];
}

interface Model {
  version: number;
  loadedAt: number;
  requirements: Map<string, Requirement | null>;
  roleGrants: Map<string, string[]>;
  userAccess: Map<string, Access>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Stored as '' (a primary key cannot hold NULL); null everywhere else. */
const ns = (v: string) => (v === '' ? null : v);
const applies = (bindingNs: string | null, asked: string | undefined) => bindingNs === null || bindingNs === asked;

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
      userAccess: new Map(),
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

  async function accessIn(m: Model, identityId: string): Promise<Access> {
    const held = m.userAccess.get(identityId);
    if (held) {
      m.userAccess.delete(identityId);
      m.userAccess.set(identityId, held);
      return held;
    }
    // Not an identity row (a workload principal that only brings its own bindings): nothing stored.
    if (!UUID.test(identityId)) return { roles: [], direct: [] };
    // One statement for both kinds of grant (the login's SQL budget counts it once).
    const { rows } = await o.db.query<{ kind: 'r' | 'p'; name: string; namespace: string }>(
      `SELECT 'r' AS kind, role AS name, namespace FROM user_roles WHERE identity_id = $1
       UNION ALL SELECT 'p', permission, namespace FROM user_permissions WHERE identity_id = $1
       ORDER BY 1, 2, 3`,
      [identityId],
    );
    const access: Access = {
      roles: rows.filter((r) => r.kind === 'r').map((r) => ({ role: r.name, namespace: ns(r.namespace) })),
      direct: rows.filter((r) => r.kind === 'p').map((r) => ({ permission: r.name, namespace: ns(r.namespace) })),
    };
    // Only into the model it was read for: a newer model starts empty and reads again.
    m.userAccess.set(identityId, access);
    while (m.userAccess.size > maxIdentities) m.userAccess.delete(m.userAccess.keys().next().value as string);
    return access;
  }

  const globalRoles = (a: Access) => [...new Set(a.roles.filter((b) => b.namespace === null).map((b) => b.role))].sort();

  function permissionsIn(m: Model, a: Access, namespace: string | undefined): PermissionView[] {
    const names = new Set<string>();
    const roles = a.roles.filter((b) => applies(b.namespace, namespace)).map((b) => b.role);
    if (roles.includes(ADMIN_ROLE)) for (const p of m.requirements.keys()) names.add(p);
    for (const d of a.direct) if (applies(d.namespace, namespace)) names.add(d.permission);
    for (const r of roles) for (const p of m.roleGrants.get(r) ?? []) names.add(p);
    return [...names]
      .filter((n) => m.requirements.has(n))
      .sort()
      .map((name) => ({ name, requirement: m.requirements.get(name) ?? null }));
  }

  function resolveIn(m: Model, a: Access, permission: string, namespace: string | undefined, extra: readonly RoleBinding[]): Resolution {
    const known = m.requirements.has(permission);
    const requirement = m.requirements.get(permission) ?? null;
    const roles = [...a.roles, ...extra].filter((b) => applies(b.namespace, namespace)).map((b) => b.role);
    const admin = roles.includes(ADMIN_ROLE);
    if (!known) return { known, admin, requirement: null };
    if (admin) return { known, admin, via: 'ADMIN', requirement };
    if (a.direct.some((d) => d.permission === permission && applies(d.namespace, namespace))) return { known, admin, via: 'DIRECT', requirement };
    if (roles.some((r) => m.roleGrants.get(r)?.includes(permission))) return { known, admin, via: 'ROLE', requirement };
    return { known, admin, requirement };
  }

  return {
    sync: async () => {
      await sync();
    },
    async rolesOf(identityId) {
      const m = await sync();
      return globalRoles(await accessIn(m, identityId));
    },
    async bindingsOf(identityId) {
      const a = await accessIn(await sync(), identityId);
      return { roles: a.roles.map((b) => ({ ...b })), permissions: a.direct.map((d) => ({ ...d })) };
    },
    async permissionsOf(identityId, namespace) {
      const m = await sync();
      return permissionsIn(m, await accessIn(m, identityId), namespace);
    },
    async accessOf(identityId, namespace) {
      const m = await sync();
      const a = await accessIn(m, identityId);
      return { roles: globalRoles(a), permissions: permissionsIn(m, a, namespace) };
    },
    async grant(identityId, permission, namespace) {
      const m = await sync();
      const r = resolveIn(m, await accessIn(m, identityId), permission, namespace, []);
      return r.via ? r.requirement : undefined;
    },
    async resolve(identityId, permission, namespace, extra = []) {
      const m = await sync();
      return resolveIn(m, await accessIn(m, identityId), permission, namespace, extra);
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
