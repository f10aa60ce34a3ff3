import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor } from 'xstate';
import { signupMachine, type CodeVerdict, type RegisterResult, type ResendResult, type SignupEffect } from '../../machines/signup.machine.ts';
import { stepOfValue } from '../../machines/types.ts';

const input = { flowId: 'flw_test', deviceId: 'dev-a', ip: '81.2.69.142', userAgent: null };
const accepted = (identityId: string | null): RegisterResult => ({ status: 'accepted', challenge: { channel: 'email', to: 'n•••@example.test' }, identityId, risk: { level: 'medium', reasons: ['NEW_DEVICE'] } });

function run(o: { register?: () => RegisterResult | Promise<RegisterResult>; verdicts?: CodeVerdict[]; resend?: ResendResult }) {
  const verdicts = [...(o.verdicts ?? [])];
  const seen: Record<string, unknown>[] = [];
  const machine = signupMachine.provide({
    actors: {
      register: fromPromise(async ({ input }) => {
        seen.push(input as unknown as Record<string, unknown>);
        return (o.register ?? (() => accepted('u1')))();
      }),
      verifyCode: fromPromise(async () => verdicts.shift() ?? 'invalid'),
      resendCode: fromPromise(async () => o.resend ?? { ok: true as const }),
    },
  });
  const effects: SignupEffect[] = [];
  const actor = createActor(machine, { input });
  actor.on('*', (e) => effects.push(e as SignupEffect));
  actor.start();
  const settle = () => waitFor(actor, (s) => s.status !== 'active' || s.hasTag('awaitingInput'));
  return { actor, effects, seen, settle };
}

describe('sign-up machine', () => {
  it('accepted → code → verified, the password never in context', async () => {
    const { actor, effects, seen, settle } = run({ verdicts: ['invalid', 'ok'] });
    actor.send({ type: 'signup', email: 'n@example.test', password: 'secret passphrase!' });
    let s = await settle();
    expect(s.value).toBe('awaitingCode');
    expect(stepOfValue(signupMachine.root, s.value)).toBe('code');
    expect(s.context.challenge).toEqual({ channel: 'email', to: 'n•••@example.test' });
    expect(JSON.stringify(s.context)).not.toContain('secret passphrase');
    expect(seen[0]).toMatchObject({ email: 'n@example.test', password: 'secret passphrase!' });
    actor.send({ type: 'code', code: '000000' });
    s = await settle();
    expect(s.context.error).toBe('MFA_CODE_INVALID');
    actor.send({ type: 'code', code: '123456' });
    s = await settle();
    expect(s.value).toBe('verified');
    expect(s.output).toEqual({ outcome: 'verified', identityId: 'u1' });
    expect(effects.map((e) => e.type)).toEqual(['signup.requested', 'email.verification_failed', 'email.verified']);
  });

  it('a refused form returns to details with the error; a risk deny ends the flow', async () => {
    const r = run({ register: () => ({ status: 'refused', error: 'EMAIL_DISPOSABLE', text: 'no' }) });
    r.actor.send({ type: 'signup', email: 'x@mailinator.com', password: 'secret passphrase!' });
    const s = await r.settle();
    expect(s.value).toBe('details');
    expect(s.context.error).toBe('EMAIL_DISPOSABLE');
    const d = run({ register: () => ({ status: 'denied', risk: { level: 'high', reasons: ['TOR_EXIT'] } }) });
    d.actor.send({ type: 'signup', email: 'x@example.test', password: 'secret passphrase!' });
    const ds = await d.settle();
    expect(ds.value).toBe('denied');
    expect(ds.context.error).toBe('SIGNUP_DENIED');
    expect(d.effects.map((e) => e.type)).toEqual(['signup.denied']);
  });

  it('a failing register actor is SERVICE_UNAVAILABLE, and the form can be sent again', async () => {
    const r = run({ register: () => Promise.reject(new Error('db down')) });
    r.actor.send({ type: 'signup', email: 'x@example.test', password: 'secret passphrase!' });
    const s = await r.settle();
    expect(s.value).toBe('details');
    expect(s.context.error).toBe('SERVICE_UNAVAILABLE');
    expect(s.can({ type: 'signup', email: 'x@example.test', password: 'p' })).toBe(true);
  });

  it('locked after the guess budget; expired asks for a resend; a resend within the cooldown says so', async () => {
    const r = run({ verdicts: ['expired', 'locked'], resend: { ok: false, error: 'CODE_RESEND_TOO_SOON', retryAfter: 12 } });
    r.actor.send({ type: 'signup', email: 'x@example.test', password: 'secret passphrase!' });
    await r.settle();
    r.actor.send({ type: 'resend' });
    let s = await r.settle();
    expect(s.context).toMatchObject({ error: 'CODE_RESEND_TOO_SOON', retryAfter: 12 });
    r.actor.send({ type: 'code', code: '1' });
    s = await r.settle();
    expect(s.context.error).toBe('MFA_CODE_EXPIRED');
    r.actor.send({ type: 'code', code: '2' });
    s = await r.settle();
    expect(s.value).toBe('locked');
    expect(s.output?.outcome).toBe('locked');
    // A resting state takes only its own events.
    expect(s.can({ type: 'code', code: '3' })).toBe(false);
  });
});
