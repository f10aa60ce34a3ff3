import { z } from 'zod';
import type { Clock } from '../clock.ts';
import type { Queryable } from '../db/db.ts';
import { ACR } from '../../machines/types.ts';
import { AppError } from '../errors.ts';
import { createRbacSnapshot, memoryVersionSource, type RbacSnapshot } from './snapshot.ts';

export const RequirementSchema = z
  .object({ amr: z.array(z.string().min(1)).optional(), maxAge: z.number().int().positive().optional() })
  .strict();
export type Requirement = z.infer<typeof RequirementSchema>;

/** Who is asking: from a session or a verified access token. */
export interface Principal {
  identityId: string;
  sessionId: string;
  amr: string[];
  authTime: number; // epoch seconds
  /** amr value → epoch seconds when that factor was last proven. */
  factorTimes: Record<string, number>;
}

export type Decision =
  | { allow: true }
  | { allow: false; code: 'PERMISSION_DENIED' }
  | { allow: false; code: 'STEP_UP_REQUIRED'; acrValues: string; maxAge?: number; description: string };

export interface Rbac {
  rolesOf(identityId: string): Promise<string[]>;
  permissionsOf(identityId: string): Promise<{ name: string; requirement: Requirement | null }[]>;
  /** Roles and permissions at the current version, together. */
  accessOf(identityId: string): Promise<{ roles: string[]; permissions: { name: string; requirement: Requirement | null }[] }>;
  /** The requirement of a permission one of these roles grants (null: none), or undefined: for workload principals. */
  grantForRoles(roles: string[], permission: string): Promise<Requirement | null | undefined>;
  /** Stops use of a permission without the role, or with weaker or staler authentication than it demands. */
  authorize(p: Principal, permission: string): Promise<Decision>;
  /**
   * Announce that roles, permissions, requirements or grants changed (after the change
   * committed): every process's next authorization sees it. Whatever changes them for an existing
   * identity calls it (no such route exists yet: a new user's roles need no announcement, nothing
   * can hold them); changes made by hand in SQL are seen within the snapshot's 60 s.
   */
  changed(): Promise<void>;
}

/** When the strongest requested amr was proven; auth_time when nothing specific was asked. */
export function provenAt(p: Principal, amr: string[] | undefined): number {
  if (!amr?.length) return p.authTime;
  return Math.min(...amr.map((a) => p.factorTimes[a] ?? p.authTime));
}

/** Pure check of a requirement against a principal at `now` (epoch seconds). */
export function checkRequirement(p: Principal, req: Requirement | null, now: number): Decision {
  if (!req) return { allow: true };
  const missing = (req.amr ?? []).filter((a) => !p.amr.includes(a));
  const acrValues = (req.amr ?? []).some((a) => a !== 'pwd') ? ACR.aal2 : ACR.aal1;
  if (missing.length)
    return { allow: false, code: 'STEP_UP_REQUIRED', acrValues, maxAge: req.maxAge, description: `Requires ${missing.join(' ')}` };
  if (req.maxAge !== undefined && now - provenAt(p, req.amr) > req.maxAge)
    return { allow: false, code: 'STEP_UP_REQUIRED', acrValues, maxAge: req.maxAge, description: 'Authentication is too old' };
  return { allow: true };
}

/** RFC 9470 §3 challenge. */
export function stepUpChallenge(d: Extract<Decision, { code: 'STEP_UP_REQUIRED' }>): string {
  const parts = [
    'Bearer error="insufficient_user_authentication"',
    `error_description="${d.description.replace(/["\\]/g, '')}"`,
    `acr_values="${d.acrValues}"`,
  ];
  if (d.maxAge !== undefined) parts.push(`max_age=${d.maxAge}`);
  return parts.join(', ');
}

/**
 * The one answer to a refused requirement: 403 PERMISSION_DENIED, or 401 STEP_UP_REQUIRED with
 * the RFC 9470 `WWW-Authenticate` challenge and the `acr_values` / `max_age` the client should
 * step up to (POST /auth/stepup). Every route and middleware that checks a requirement uses it.
 */
export function decisionError(d: Exclude<Decision, { allow: true }>): AppError {
  if (d.code === 'PERMISSION_DENIED') return new AppError('PERMISSION_DENIED');
  return new AppError('STEP_UP_REQUIRED', {
    detail: d.description,
    headers: { 'WWW-Authenticate': stepUpChallenge(d) },
    extra: { acr_values: d.acrValues, ...(d.maxAge !== undefined ? { max_age: d.maxAge } : {}) },
  });
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
    permissionsOf: (identityId) => snap.permissionsOf(identityId),
    accessOf: (identityId) => snap.accessOf(identityId),
    grantForRoles: (roles, permission) => snap.grantForRoles(roles, permission),
    async authorize(p, permission) {
      const requirement = await snap.grant(p.identityId, permission);
      if (requirement === undefined) return { allow: false, code: 'PERMISSION_DENIED' };
      return checkRequirement(p, requirement, Math.floor(clock.now() / 1000));
    },
    changed: () => snap.bump(),
  };
}
