import { z } from 'zod';
import { fromPromise } from 'xstate';
import type { MethodDescriptor } from '../registry.ts';

/**
 * Identifier and password: the default first factor (argon2id, account lockout: ./password.ts), or
 * checked at an organisation's IdP (src/authn/federation/upstream-password.ts); amr `pwd` either way.
 */
export const password: MethodDescriptor = {
  id: 'password',
  kind: 'first',
  methods: ['password'],
  amr: ['pwd'],
  events: [z.object({ type: z.literal('password'), identifier: z.string().min(1).max(320), password: z.string().max(1024) }).strict()],
  steps: [{ step: 'password' }],
  loginActors: (d) => ({
    verifyPassword: fromPromise(async ({ input }) => {
      // An organisation whose IdP checks its passwords (legacy upstreamPassword): asked there, and
      // not looked up for breaches here (it is not our password to change).
      const upstream = await d.idp?.upstreamPassword?.(input.identifier, input.password);
      if (upstream) return upstream;
      const r = await d.passwords.verifyLogin(input.identifier, input.password);
      // Only a right password is looked up for breaches: the check is no oracle for guesses.
      if (r.ok && r.identityId && d.compromised && (await d.compromised.checkAtLogin(r.identityId, input.password))) return { ...r, changeRequired: true };
      return r;
    }),
  }),
};
