import { describe, expect, it } from 'vitest';
import { mfaMachine } from '../../machines/mfa.machine.ts';
import { loginMachine } from '../../machines/login.machine.ts';
import { METHOD_STRENGTH } from '../../machines/types.ts';
import {
  CHALLENGE_STEPS,
  FIRST_FACTORS,
  KEY_METHODS,
  NO_ASSURANCE_METHODS,
  LOGIN_START_METHODS,
  METHODS,
  SECOND_FACTOR_METHODS,
  SECOND_FACTORS,
  type LoginActorDeps,
  type MfaActorDeps,
} from '../../src/authn/methods/registry.ts';
import { LoginEventSchema, StepUpEventSchema } from '../../src/http/routes/login.ts';

// Actor factories only build closures here; nothing is called.
const mfaDeps = { guard: {}, totp: {}, recovery: {}, ports: {} } as unknown as MfaActorDeps;
const loginDeps = { passwords: {} } as unknown as LoginActorDeps;
const keysOf = (xs: (object | undefined)[]) => xs.flatMap((x) => Object.keys(x ?? {}));

describe('method registry', () => {
  it('has one folder id per method, and second factors in the order the MFA chart offers them', () => {
    expect(new Set(METHODS.map((m) => m.id)).size).toBe(METHODS.length);
    expect(METHODS.map((m) => m.id)).toEqual(['password', 'passkey', 'webauthn', 'totp', 'codes', 'recovery']);
    expect(SECOND_FACTOR_METHODS).toEqual([...METHOD_STRENGTH]);
    expect(LOGIN_START_METHODS).toEqual(['password', 'passkey']);
  });

  it('provides every actor of the MFA chart exactly once, from the second-factor methods', () => {
    const provided = keysOf(SECOND_FACTORS.map((m) => m.mfaActors?.(mfaDeps)));
    expect([...provided].sort()).toEqual(Object.keys(mfaMachine.implementations.actors).sort());
  });

  it('provides every first-factor actor of the login chart exactly once (risk and MFA are not methods)', () => {
    const provided = keysOf(FIRST_FACTORS.map((m) => m.loginActors?.(loginDeps)));
    const wanted = Object.keys(loginMachine.implementations.actors).filter((k) => k !== 'scoreRisk' && k !== 'mfa');
    expect([...provided].sort()).toEqual(wanted.sort());
  });

  it('gives every second factor a factor source saying whether the user holds it', () => {
    for (const m of SECOND_FACTORS) for (const id of m.methods) expect(m.factors?.held[id as never], id).toMatch(/\$1/);
  });

  it('offers only keys where a key is required, and never an email code for a step-up', () => {
    expect([...KEY_METHODS]).toEqual(['webauthn']);
    expect([...NO_ASSURANCE_METHODS]).toEqual(['email']);
  });

  it('shows the challenge only on the steps whose methods have one', () => {
    expect([...CHALLENGE_STEPS].sort()).toEqual(['code', 'webauthn']);
  });

  it('accepts each method’s events, and no event a method keeps for its own routes', () => {
    expect(LoginEventSchema.safeParse({ type: 'password', identifier: 'a@example.com', password: 'x' }).success).toBe(true);
    expect(LoginEventSchema.safeParse({ type: 'choose', method: 'recovery_code' }).success).toBe(true);
    expect(LoginEventSchema.safeParse({ type: 'webauthn', response: {} }).success).toBe(true);
    expect(LoginEventSchema.safeParse({ type: 'resend' }).success).toBe(true);
    expect(StepUpEventSchema.safeParse({ type: 'totp', code: '123456' }).success).toBe(true);
    // A step-up has no first factor; a client can never claim an identity a callback verified.
    expect(StepUpEventSchema.safeParse({ type: 'password', identifier: 'a@example.com', password: 'x' }).success).toBe(false);
    expect(LoginEventSchema.safeParse({ type: 'idp.verified', identityId: '00000000-0000-4000-8000-000000000000', amr: ['fed'] }).success).toBe(false);
    expect(LoginEventSchema.safeParse({ type: 'choose', method: 'passkey' }).success).toBe(false);
    expect(LoginEventSchema.safeParse({ type: 'totp', code: '1'.repeat(65) }).success).toBe(false);
  });
});
