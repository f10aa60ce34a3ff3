import type { Context } from 'hono';
import { z } from 'zod';
import { requireFreshMfa } from '../../http/middleware/auth.ts';
import type { Env, Services } from '../../http/services.ts';

/** What every method's enrolment routes (mounted under /auth/mfa) share. */

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const CodeSchema = z.object({ code: z.string().max(64) }).strict();
export const obj = (description: string) => ({ description, schema: { jsonSchema: { type: 'object' } } });
export const FRESH = ['UNAUTHENTICATED', 'STEP_UP_REQUIRED'] as const;
export const CODE_ERRORS = ['MFA_CODE_INVALID', 'MFA_CODE_EXPIRED', 'MFA_CODE_LOCKED', 'MFA_FACTOR_NOT_FOUND', 'MFA_ALREADY_CONFIRMED', 'CONFLICT'] as const;

/** A factor changed: audited, and mailed to the user once (even if this request is retried). */
export async function factorChanged(s: Services, identityId: string, type: string, factorId: string, action: 'enrolled' | 'removed' | 'recovery_codes_regenerated') {
  // New recovery codes are one happening whether first or regenerated: `recovery_codes.generated`.
  if (action === 'recovery_codes_regenerated')
    await s.audit.append({ type: 'recovery_codes.generated', actor: identityId, subject: factorId, reason: 'REGENERATED' });
  else await s.audit.append({ type: `mfa.${action}`, actor: identityId, subject: factorId, reason: type.toUpperCase() });
  await s.notifyUser?.(identityId, 'factor_changed', { factor: type, action }, `${factorId}-${action}-${Math.floor(s.clock.now() / 1000)}`);
}

/** Beside existing factors, every step that adds one needs fresh MFA (else a stolen password session could add its own). */
export async function freshIfFactors(c: Context<Env>, s: Services, identityId: string) {
  if ((await s.factors.methodsOf(identityId)).length) await requireFreshMfa(c, s);
}
