import { z } from 'zod';
import { fromPromise } from 'xstate';
import { guardSecondFactor } from '../../../auth/mfa-guard.ts';
import type { CodeVerdict } from '../../../../machines/mfa.machine.ts';
import type { MethodDescriptor } from '../registry.ts';
import { codesRoutes } from './routes.ts';

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const unavailable = (what: string) => async (): Promise<never> => {
  throw new Error(`${what} is not configured`);
};
const contactHeld = (channel: 'sms' | 'email') =>
  `EXISTS (SELECT 1 FROM contact_factors WHERE identity_id = $1 AND confirmed_at IS NOT NULL AND channel = '${channel}')`;

/**
 * One-time codes sent to a bound phone (SMS, a restricted authenticator: proves `sms`) or email
 * address (proves the internal `email` marker only: NIST 800-63B does not count email). ./codes.ts.
 */
export const codes: MethodDescriptor = {
  id: 'codes',
  kind: 'second',
  methods: ['sms', 'email'],
  amr: ['sms', 'email'],
  events: [z.object({ type: z.literal('code'), code: z.string().max(64) }).strict(), z.object({ type: z.literal('resend') }).strict()],
  steps: [{ step: 'code', challenge: true }],
  raisesNoAssurance: ['email'],
  factors: {
    held: { sms: contactHeld('sms'), email: contactHeld('email') },
    table: 'contact_factors',
    usable: 'confirmed_at IS NOT NULL',
    async list(db, identityId) {
      const { rows } = await db.query<{ id: string; channel: 'sms' | 'email'; label: string; created_at: Date; last_used_at: Date | null }>(
        'SELECT id, channel, label, created_at, last_used_at FROM contact_factors WHERE identity_id = $1 AND confirmed_at IS NOT NULL ORDER BY created_at',
        [identityId],
      );
      return rows.map((r) => ({ id: r.id, type: r.channel, label: r.label, createdAt: iso(r.created_at), lastUsedAt: iso(r.last_used_at), ...(r.channel === 'sms' ? { restricted: true } : {}) }));
    },
  },
  mfaActors: ({ guard, ports }) => ({
    sendCode: fromPromise(({ input }) => (ports.sendCode ?? unavailable('code delivery'))(input)),
    // Codes also count toward the account-wide guard: many flows do not buy many guesses.
    verifyCode: fromPromise(async ({ input }) => {
      const check = ports.verifyCode ?? unavailable('codes');
      const seen: { verdict: CodeVerdict } = { verdict: 'invalid' };
      const ok = await guardSecondFactor(guard, async () => {
        seen.verdict = await check(input.flowId, input.code);
        return seen.verdict === 'ok';
      })(input.identityId, input.code);
      // A locked account's code is not even checked: it reads as invalid.
      return ok ? 'ok' : seen.verdict === 'ok' ? 'invalid' : seen.verdict;
    }),
  }),
  routes: codesRoutes,
};
