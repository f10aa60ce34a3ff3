import { z } from 'zod';
import { fromPromise } from 'xstate';
import { guardSecondFactor } from '../../../auth/mfa-guard.ts';
import type { MethodDescriptor } from '../registry.ts';
import { totpRoutes } from './routes.ts';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** An authenticator app (RFC 6238, ./totp.ts); proves `otp`. */
export const totp: MethodDescriptor = {
  id: 'totp',
  kind: 'second',
  methods: ['totp'],
  amr: ['otp'],
  events: [z.object({ type: z.literal('totp'), code: z.string().max(64) }).strict()],
  steps: [{ step: 'totp' }],
  factors: {
    held: { totp: 'EXISTS (SELECT 1 FROM totp_factors WHERE identity_id = $1 AND confirmed_at IS NOT NULL)' },
    table: 'totp_factors',
    usable: 'confirmed_at IS NOT NULL',
    async list(db, identityId) {
      const { rows } = await db.query<{ id: string; label: string; created_at: Date; last_used_at: Date | null }>(
        'SELECT id, label, created_at, last_used_at FROM totp_factors WHERE identity_id = $1 AND confirmed_at IS NOT NULL ORDER BY created_at',
        [identityId],
      );
      return rows.map((r) => ({ id: r.id, type: 'totp' as const, label: r.label, createdAt: iso(r.created_at), lastUsedAt: iso(r.last_used_at) }));
    },
  },
  mfaActors: (d) => {
    // Every check goes through the account-wide guard: guessing across many flows still locks.
    const check = guardSecondFactor(d.guard, d.totp.verify);
    return { verifyTotp: fromPromise(({ input }) => check(input.identityId, input.code)) };
  },
  routes: totpRoutes,
};
