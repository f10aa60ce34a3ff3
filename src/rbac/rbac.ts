import type { Clock } from '../clock.ts';
import type { Queryable } from '../db/db.ts';
import { checkRequirement, type Decision, type Requirement } from '../authz/decision.ts';
import { createRbacSnapshot, memoryVersionSource, type PermissionView, type RbacSnapshot, type RoleBinding } from './snapshot.ts';

// Decisions, requirements and the challenge live in src/authz/decision.ts; re-exported for the
// modules that have always imported them from here.
export { checkRequirement, decisionError, provenAt, RequirementSchema, stepUpChallenge } from '../authz/decision.ts';
export type { Decision, Requirement } from '../authz/decision.ts';

/** Who is asking through a session: from the session cookie or a verified access token. */
export interface Principal {
  identityId: string;
  sessionId: string;
  amr: string[];
  authTime: number; // epoch seconds
  /** amr value → epoch seconds when that factor was last proven. */
  factorTimes: Record<string, number>;
}

export interface Rbac {
  /** Roles held globally. */
  rolesOf(identityId: string): Promise<string[]>;
  /** Permissions held globally (or in `namespace`), with their requirements. */
  permissionsOf(identityId: string, namespace?: string): Promise<PermissionView[]>;
  /** Roles and permissions at the current version, together. */
  accessOf(identityId: string, namespace?: string): Promise<{ roles: string[]; permissions: PermissionView[] }>;
  /** Every role binding and direct grant (for the admin API). */
  bindingsOf(identityId: string): Promise<{ roles: RoleBinding[]; permissions: { permission: string; namespace: string | null }[] }>;
  /** Stops use of a permission not granted (here), or with weaker or staler authentication than it demands. */
  authorize(p: Principal, permission: string, namespace?: string): Promise<Decision>;
  /** The snapshot decisions are made from (src/authz/authorizer.ts reads it). */
  readonly snapshot: RbacSnapshot;
  /**
   * Announce that roles, permissions, requirements or grants changed (after the change
   * committed): every process's next authorization sees it. The role-binding and direct-grant
   * routes (src/http/routes/bindings.ts) call it; changes made by hand in SQL are seen within the
   * snapshot's 60 s.
   */
  changed(): Promise<void>;
}

/**
 * Authorization from the in-memory RBAC snapshot (src/rbac/snapshot.ts): after one version read
 * per call, memory lookups only. Without a snapshot (tests, tools) it builds its own, versioned in
 * memory for this process.
 */
export function createRbac(db: Queryable, clock: Clock, snapshot?: RbacSnapshot): Rbac {
  const snap = snapshot ?? createRbacSnapshot({ db, clock, source: memoryVersionSource() });
  return {
    rolesOf: (identityId) => snap.rolesOf(identityId),
    permissionsOf: (identityId, namespace) => snap.permissionsOf(identityId, namespace),
    accessOf: (identityId, namespace) => snap.accessOf(identityId, namespace),
    bindingsOf: (identityId) => snap.bindingsOf(identityId),
    async authorize(p, permission, namespace) {
      const r = await snap.resolve(p.identityId, permission, namespace);
      if (!r.via) return { allow: false, code: 'PERMISSION_DENIED', ...(r.known ? {} : { unknown: true }) };
      return checkRequirement(p, r.requirement, Math.floor(clock.now() / 1000));
    },
    snapshot: snap,
    changed: () => snap.bump(),
  };
}
