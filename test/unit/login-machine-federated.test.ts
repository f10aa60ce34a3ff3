import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, waitFor, type AnyActorRef } from 'xstate';
import { loginMachine, type FederatedOutcome, type IdpStart, type LoginInput } from '../../machines/login.machine.ts';
import { mfaMachine } from '../../machines/mfa.machine.ts';
import { stepOfValue, type FlowEffect, type MfaMethod, type RiskOutcome } from '../../machines/types.ts';

/** The login machine's federated first factor, with fake actors (issue 10). */
const input: LoginInput = { flowId: 'flw_fed', deviceId: 'd', ip: '81.2.69.142', maxPasswordAttempts: 3, maxMfaAttempts: 3, riskTimeoutMs: 2000, method: 'idp', provider: 'acme' };
const risk = (decision: RiskOutcome['decision']): RiskOutcome => ({
  decision, level: decision === 'allow' ? 'low' : 'medium', score: 0, reasons: decision === 'allow' ? [] : ['NEW_COUNTRY'], policyVersion: 't', contributions: {}, signals: {}, country: 'AU', lat: 0, lon: 0,
});
const ok = (amr: string[], methods: MfaMethod[] = ['totp']): FederatedOutcome => ({ ok: true, identityId: 'u1', methods, amr, upstreamMfa: amr.includes('mfa'), upstreamAuthTime: 1 });

function run(o: { start?: IdpStart; resolve?: FederatedOutcome; decision?: RiskOutcome['decision'] }) {
  const m = loginMachine.provide({
    actors: {
      startIdp: fromPromise(async () => o.start ?? { ok: true as const, providerId: 'p1', url: 'https://idp.example/authorize?x' }),
      resolveFederated: fromPromise(async () => o.resolve ?? ok(['fed'])),
      scoreRisk: fromPromise(async () => risk(o.decision ?? 'allow')),
      mfa: mfaMachine.provide({ actors: { verifyTotp: fromPromise(async ({ input: i }: { input: { identityId: string; code: string } }) => i.code === '123456') } }) as never,
    },
  });
  const effects: FlowEffect[] = [];
  const actor = createActor(m, { input });
  actor.on('*', (e) => effects.push(e as FlowEffect));
  actor.start();
  const rest = (a: AnyActorRef) => {
    const s = a.getSnapshot();
    if (s.status !== 'active' || s.hasTag('awaitingInput')) return true;
    const child = s.children.mfa as AnyActorRef | undefined;
    return s.hasTag('delegating') && !!child && child.getSnapshot().hasTag('awaitingInput');
  };
  return { actor, effects, settle: () => waitFor(actor, () => rest(actor), { timeout: 5000 }) };
}
const assertion = { providerId: 'p1', protocol: 'oidc', issuer: 'https://idp', subject: 's', groups: [], upstreamAmr: [] };

describe('login machine: federated first factor', () => {
  it('rests at awaitingIdp (step redirect) with the authorization URL', async () => {
    const { actor, settle } = run({});
    await settle();
    const s = actor.getSnapshot();
    expect(s.value).toBe('awaitingIdp');
    expect(s.hasTag('awaitingInput')).toBe(true);
    expect(stepOfValue(loginMachine.root, s.value)).toBe('redirect');
    expect(s.context.redirect).toEqual({ url: 'https://idp.example/authorize?x' });
    expect(s.context.idp).toEqual({ providerId: 'p1', slug: 'acme' });
    // Only the server's events move it: no password, no second factor.
    expect(s.can({ type: 'password', identifier: 'a', password: 'b' })).toBe(false);
    expect(s.can({ type: 'totp', code: '1' })).toBe(false);
  });

  it('ends denied with the reason when the IdP cannot be asked', async () => {
    const { actor, settle, effects } = run({ start: { ok: false, reason: 'IDP_UNAVAILABLE' } });
    await settle();
    expect(actor.getSnapshot().output).toMatchObject({ outcome: 'denied', reason: 'IDP_UNAVAILABLE' });
    expect(effects.map((e) => e.type)).toEqual(['login.denied']);
  });

  it('scores risk after a verified assertion and allows with amr fed', async () => {
    const { actor, settle, effects } = run({});
    await settle();
    actor.send({ type: 'federated', assertion });
    await settle();
    expect(actor.getSnapshot().output).toMatchObject({ outcome: 'allowed', identityId: 'u1', amr: ['fed'], factors: ['fed'], acr: 'urn:threshold:acr:aal1' });
    expect(effects.map((e) => e.type)).toEqual(['risk.decided', 'login.allowed']);
    expect(actor.getSnapshot().context.redirect).toBeNull();
  });

  it('steps up to a local factor when risk asks, and the IdP did not prove MFA: fed + otp is mfa', async () => {
    const { actor, settle } = run({ decision: 'step_up' });
    await settle();
    actor.send({ type: 'federated', assertion });
    await settle();
    expect(actor.getSnapshot().value).toEqual({ stepUp: 'challenging' });
    actor.send({ type: 'totp', code: '123456' });
    await settle();
    expect(actor.getSnapshot().output).toMatchObject({ outcome: 'allowed', amr: ['fed', 'otp', 'mfa'], factors: ['fed', 'totp'] });
  });

  it('does not step up when the trusted IdP proved MFA (amr fed mfa)', async () => {
    const { actor, settle } = run({ decision: 'step_up', resolve: ok(['fed', 'mfa']) });
    await settle();
    actor.send({ type: 'federated', assertion });
    await settle();
    expect(actor.getSnapshot().output).toMatchObject({ outcome: 'allowed', amr: ['fed', 'mfa'], acr: 'urn:threshold:acr:aal2' });
    expect(actor.getSnapshot().context.idp).toMatchObject({ upstreamMfa: true, upstreamAuthTime: 1 });
  });

  it('is refused like any login when risk denies, and when the identity cannot be resolved', async () => {
    const denied = run({ decision: 'deny' });
    await denied.settle();
    denied.actor.send({ type: 'federated', assertion });
    await denied.settle();
    expect(denied.actor.getSnapshot().output).toMatchObject({ outcome: 'denied', reason: 'RISK_DENIED' });

    const refused = run({ resolve: { ok: false, reason: 'NO_LINKED_ACCOUNT' } });
    await refused.settle();
    refused.actor.send({ type: 'federated', assertion });
    await refused.settle();
    expect(refused.actor.getSnapshot().output).toMatchObject({ outcome: 'denied', reason: 'FEDERATION_REFUSED', identityId: null });
    expect(refused.actor.getSnapshot().context.idp).toMatchObject({ refusal: 'NO_LINKED_ACCOUNT' });
  });

  it('ends denied with the failure a callback reports', async () => {
    const { actor, settle, effects } = run({});
    await settle();
    actor.send({ type: 'federation_failed', reason: 'IDP_ERROR' });
    await settle();
    expect(actor.getSnapshot().output).toMatchObject({ outcome: 'denied', reason: 'IDP_ERROR' });
    expect(effects).toEqual([{ type: 'login.denied', identityId: null, reason: 'IDP_ERROR' }]);
  });
});
