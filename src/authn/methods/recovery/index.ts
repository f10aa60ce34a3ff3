import { z } from 'zod';
import { fromPromise } from 'xstate';
import { guardSecondFactor } from '../../../auth/mfa-guard.ts';
import type { MethodDescriptor } from '../registry.ts';
import { recoveryRoutes } from './routes.ts';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/**
 * Single-use recovery codes (./recovery.ts): NIST look-up secrets, proving the internal `lookup`
 * marker (a possession factor, never published). They belong to the other factors: removing the
 * last of those removes them too.
 */
export const recovery: MethodDescriptor = {
  id: 'recovery',
  kind: 'second',
  methods: ['recovery_code'],
  amr: ['lookup'],
  events: [z.object({ type: z.literal('recovery_code'), code: z.string().max(64) }).strict()],
  steps: [{ step: 'recovery_code' }],
  factors: {
    held: { recovery_code: 'EXISTS (SELECT 1 FROM recovery_codes WHERE identity_id = $1 AND used_at IS NULL)' },
    dropWhenAlone: 'DELETE FROM recovery_codes WHERE identity_id = $1',
    async list(db, identityId) {
      const { rows } = await db.query<{ n: number; created_at: Date | null }>(
        'SELECT count(*) FILTER (WHERE used_at IS NULL)::int AS n, min(created_at) AS created_at FROM recovery_codes WHERE identity_id = $1',
        [identityId],
      );
      if (!(rows[0].n > 0)) return [];
      return [{ id: 'recovery_codes', type: 'recovery_code' as const, label: 'Recovery codes', createdAt: iso(rows[0].created_at), lastUsedAt: null, remaining: rows[0].n }];
    },
  },
  mfaActors: (d) => {
    const check = guardSecondFactor(d.guard, d.recovery.consume);
    return { verifyRecoveryCode: fromPromise(({ input }) => check(input.identityId, input.code)) };
  },
  routes: recoveryRoutes,
};
