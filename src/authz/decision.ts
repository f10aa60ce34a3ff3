import { z } from 'zod';
import { ACR } from '../../machines/types.ts';
import { AppError } from '../errors.ts';

/**
 * Authorization decisions and the one place that turns a refused decision into an answer:
 * 403, or 401 with the RFC 9470 step-up challenge. Every route, middleware and forward-auth
 * answer goes through `decisionAnswer` (bodyless) or `decisionError` (problem+json).
 */

export const RequirementSchema = z
  .object({ amr: z.array(z.string().min(1)).optional(), maxAge: z.number().int().positive().optional() })
  .strict();
export type Requirement = z.infer<typeof RequirementSchema>;

/** What a requirement is checked against: what was proven, and when. */
export interface Proof {
  amr: string[];
  authTime: number; // epoch seconds
  /** amr value → epoch seconds when that factor was last proven. */
  factorTimes: Record<string, number>;
}

export type Decision =
  | { allow: true }
  /** `unknown`: no permission of that name exists (told to admins and the audit, never to other callers). */
  | { allow: false; code: 'PERMISSION_DENIED'; unknown?: boolean }
  | { allow: false; code: 'STEP_UP_REQUIRED'; acrValues: string; maxAge?: number; description: string };

export type Refusal = Exclude<Decision, { allow: true }>;

/** When the strongest requested amr was proven; auth_time when nothing specific was asked. */
export function provenAt(p: Proof, amr: string[] | undefined): number {
  if (!amr?.length) return p.authTime;
  return Math.min(...amr.map((a) => p.factorTimes[a] ?? p.authTime));
}

/** Pure check of a requirement against what was proven at `now` (epoch seconds). */
export function checkRequirement(p: Proof, req: Requirement | null, now: number): Decision {
  if (!req) return { allow: true };
  const missing = (req.amr ?? []).filter((a) => !p.amr.includes(a));
  const acrValues = (req.amr ?? []).some((a) => a !== 'pwd') ? ACR.aal2 : ACR.aal1;
  if (missing.length)
    return { allow: false, code: 'STEP_UP_REQUIRED', acrValues, maxAge: req.maxAge, description: `Requires ${missing.join(' ')}` };
  if (req.maxAge !== undefined && now - provenAt(p, req.amr) > req.maxAge)
    return { allow: false, code: 'STEP_UP_REQUIRED', acrValues, maxAge: req.maxAge, description: 'Authentication is too old' };
  return { allow: true };
}

/** The RFC 9470 §3 challenge: the only place it is written. */
export function stepUpChallenge(d: Extract<Decision, { code: 'STEP_UP_REQUIRED' }>): string {
  const parts = [
    'Bearer error="insufficient_user_authentication"',
    `error_description="${d.description.replace(/["\\]/g, '')}"`,
    `acr_values="${d.acrValues}"`,
  ];
  if (d.maxAge !== undefined) parts.push(`max_age=${d.maxAge}`);
  return parts.join(', ');
}

/** The challenge of a request with no usable credential (RFC 6750 §3; `invalid_token` when one was presented). */
export const unauthenticatedChallenge = (presented: boolean) => (presented ? 'Bearer error="invalid_token"' : 'Bearer');

/**
 * A refusal as an answer: status, stable code and headers. `tellUnknown` (the caller is an
 * administrator) answers PERMISSION_UNKNOWN for a permission name that does not exist; anyone
 * else gets the same PERMISSION_DENIED as a refusal (no enumeration of permission names).
 */
export function decisionAnswer(d: Refusal, o: { tellUnknown?: boolean } = {}): { status: 401 | 403; code: 'PERMISSION_DENIED' | 'PERMISSION_UNKNOWN' | 'STEP_UP_REQUIRED'; headers: Record<string, string> } {
  if (d.code === 'PERMISSION_DENIED') return { status: 403, code: d.unknown && o.tellUnknown ? 'PERMISSION_UNKNOWN' : 'PERMISSION_DENIED', headers: {} };
  return { status: 401, code: 'STEP_UP_REQUIRED', headers: { 'WWW-Authenticate': stepUpChallenge(d) } };
}

/**
 * The one answer to a refused decision as problem+json: 403 PERMISSION_DENIED (or
 * PERMISSION_UNKNOWN to an administrator), or 401 STEP_UP_REQUIRED with the RFC 9470
 * `WWW-Authenticate` challenge and the `acr_values` / `max_age` to step up to (POST /auth/stepup).
 */
export function decisionError(d: Refusal, o: { tellUnknown?: boolean } = {}): AppError {
  const a = decisionAnswer(d, o);
  if (d.code !== 'STEP_UP_REQUIRED') return new AppError(a.code as 'PERMISSION_DENIED' | 'PERMISSION_UNKNOWN');
  return new AppError('STEP_UP_REQUIRED', {
    detail: d.description,
    headers: a.headers,
    extra: { acr_values: d.acrValues, ...(d.maxAge !== undefined ? { max_age: d.maxAge } : {}) },
  });
}
