import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticatorEmulator, PasskeysCredentialsMemoryRepository, WebAuthnEmulator } from 'nid-webauthn-emulator';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { createAudit } from '../../src/audit/audit.ts';
import { amrForWebAuthn, createWebAuthnService } from '../../src/authn/methods/webauthn/webauthn.ts';
import type { WebAuthnService } from '../../src/authn/methods/webauthn/webauthn.ts';
import { ManualClock } from '../../src/clock.ts';
import type { Db } from '../../src/db/db.ts';
import { AppError } from '../../src/errors.ts';
import { createTestDb } from '../helpers/db.ts';

const ORIGIN = 'https://threshold.test';
const RP_ID = 'threshold.test';

let db: Db;
let drop: () => Promise<void>;
beforeAll(async () => {
  ({ db, drop } = await createTestDb());
});
afterAll(async () => {
  await drop();
});

function service(over: { rpID?: string; origins?: string[]; clock?: ManualClock } = {}): WebAuthnService {
  const clock = over.clock ?? new ManualClock();
  return createWebAuthnService({
    db,
    clock,
    audit: createAudit(db, clock),
    rpID: over.rpID ?? RP_ID,
    rpName: 'Threshold',
    origins: over.origins ?? [ORIGIN],
  });
}

type Interaction = () => { options: { uv: boolean; up: boolean } };

/** A software authenticator with its own key store (the library's default store is shared). */
function authenticator(p: { repo?: PasskeysCredentialsMemoryRepository; assertion?: Interaction } = {}) {
  return new WebAuthnEmulator(
    new AuthenticatorEmulator({
      credentialsRepository: p.repo ?? new PasskeysCredentialsMemoryRepository(),
      ...(p.assertion ? { userGetAssertionInteraction: p.assertion } : {}),
    }),
  );
}
const withoutUv: Interaction = () => ({ options: { uv: false, up: true } });

const flow = () => `flow-${randomUUID()}`;

/** A user with one credential registered through the service; returns what the tests need. */
async function enrolled(svc: WebAuthnService, emu: WebAuthnEmulator, passkey = true) {
  const u = { id: randomUUID(), email: `u-${randomUUID()}@example.test` };
  await db.query('INSERT INTO identities (id, email, created_at) VALUES ($1, $2, now())', [u.id, u.email]);
  const flowKey = `session:${randomUUID()}`;
  const o = await svc.registrationOptions({ identityId: u.id, email: u.email, displayName: 'Ada', flowKey, passkey });
  const r = emu.createJSON(ORIGIN, o) as RegistrationResponseJSON;
  const saved = await svc.register({ identityId: u.id, flowKey, response: r });
  return { ...u, credId: saved.id, rawId: r.id };
}

/** Options for a flow, signed by the emulator as a browser on `origin` would. */
async function assertion(
  svc: WebAuthnService,
  emu: WebAuthnEmulator,
  a: { flowKey: string; identityId: string | null; uv?: 'required' | 'preferred'; origin?: string; related?: string[] },
): Promise<AuthenticationResponseJSON> {
  const o = await svc.authenticationOptions({ flowKey: a.flowKey, identityId: a.identityId, userVerification: a.uv ?? 'required' });
  return emu.getJSON(a.origin ?? ORIGIN, o, a.related ?? []) as AuthenticationResponseJSON;
}

async function storedCounter(credId: string): Promise<number> {
  const { rows } = await db.query<{ counter: string }>('SELECT counter FROM webauthn_credentials WHERE id = $1', [credId]);
  return Number(rows[0].counter);
}

async function auditOf(identityId: string) {
  const { rows } = await db.query<{ type: string; reason: string | null; data: Record<string, unknown> }>(
    'SELECT type, reason, data FROM audit_events WHERE subject = $1 ORDER BY seq',
    [identityId],
  );
  return rows;
}

describe('WebAuthn authentication: accepted', () => {
  it('verifies a second-factor assertion, advances the counter and records the use', async () => {
    const svc = service();
    const emu = authenticator();
    const u = await enrolled(svc, emu);
    const flowKey = flow();
    const o = await svc.authenticationOptions({ flowKey, identityId: u.id, userVerification: 'preferred' });
    expect(o.rpId).toBe(RP_ID);
    expect(o.allowCredentials).toEqual([{ id: u.rawId, type: 'public-key', transports: ['usb'] }]);

    const res = await svc.authenticate({ flowKey, identityId: u.id, response: emu.getJSON(ORIGIN, o) as AuthenticationResponseJSON });
    expect(res).toEqual({ ok: true, identityId: u.id, credentialId: u.credId, userVerified: true, deviceType: 'multiDevice', backedUp: true });
    expect(await storedCounter(u.credId)).toBe(1);
    expect((await svc.list(u.id))[0].lastUsedAt).not.toBeNull();

    const f2 = flow();
    const again = await svc.authenticate({ flowKey: f2, identityId: u.id, response: await assertion(svc, emu, { flowKey: f2, identityId: u.id }) });
    expect(again.ok).toBe(true);
    expect(await storedCounter(u.credId)).toBe(2);
  });

  it('signs a user in with a discoverable passkey and no identifier, resolving the owner', async () => {
    const svc = service();
    const emu = authenticator();
    const u = await enrolled(svc, emu);
    const flowKey = flow();
    const o = await svc.authenticationOptions({ flowKey, identityId: null, userVerification: 'required' });
    expect(o.allowCredentials).toEqual([]);
    expect(o.userVerification).toBe('required');
    const response = emu.getJSON(ORIGIN, o) as AuthenticationResponseJSON;
    expect(response.response.userHandle).toBeTruthy();

    const res = await svc.authenticate({ flowKey, identityId: null, response });
    expect(res).toMatchObject({ ok: true, identityId: u.id, credentialId: u.credId, userVerified: true });
    if (!res.ok) throw new Error('unreachable');
    expect(amrForWebAuthn(res)).toEqual(['swk', 'user', 'mfa']);
  });

  it('a device-bound security key without a counter (always 0) may sign in repeatedly: hwk', async () => {
    const svc = service();
    const key = new WebAuthnEmulator(new AuthenticatorEmulator({ stateless: true }));
    const u = await enrolled(svc, key, false);
    for (let i = 0; i < 2; i++) {
      const flowKey = flow();
      const res = await svc.authenticate({ flowKey, identityId: u.id, response: await assertion(svc, key, { flowKey, identityId: u.id }) });
      expect(res).toMatchObject({ ok: true, deviceType: 'singleDevice', backedUp: false });
      if (res.ok) expect(amrForWebAuthn(res)).toEqual(['hwk', 'user', 'mfa']);
    }
    expect(await storedCounter(u.credId)).toBe(0);
  });

  it('accepts an assertion without UV when UV was only preferred, and reports it', async () => {
    const svc = service();
    const repo = new PasskeysCredentialsMemoryRepository();
    const u = await enrolled(svc, authenticator({ repo }));
    const flowKey = flow();
    const res = await svc.authenticate({
      flowKey,
      identityId: u.id,
      response: await assertion(svc, authenticator({ repo, assertion: withoutUv }), { flowKey, identityId: u.id, uv: 'preferred' }),
    });
    expect(res).toMatchObject({ ok: true, userVerified: false });
    if (res.ok) expect(amrForWebAuthn(res)).toEqual(['swk']);
  });
});

describe('WebAuthn authentication: refused', () => {
  it('a replayed assertion: the same response twice fails the second time with CHALLENGE', async () => {
    const svc = service();
    const emu = authenticator();
    const u = await enrolled(svc, emu);
    const flowKey = flow();
    const response = await assertion(svc, emu, { flowKey, identityId: u.id });
    expect((await svc.authenticate({ flowKey, identityId: u.id, response })).ok).toBe(true);
    expect(await svc.authenticate({ flowKey, identityId: u.id, response })).toEqual({ ok: false, reason: 'CHALLENGE' });
  });

  it('20 parallel submissions of one assertion to its flow: exactly one succeeds', async () => {
    const svc = service();
    const emu = authenticator();
    const u = await enrolled(svc, emu);
    const flowKey = flow();
    const response = await assertion(svc, emu, { flowKey, identityId: u.id });
    const results = await Promise.all(Array.from({ length: 20 }, () => svc.authenticate({ flowKey, identityId: u.id, response })));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.reason === 'CHALLENGE')).toHaveLength(19);
    expect(await storedCounter(u.credId)).toBe(1);
  });

  it('a failed attempt spends the challenge: no second try with a better response', async () => {
    const svc = service();
    const repo = new PasskeysCredentialsMemoryRepository();
    const u = await enrolled(svc, authenticator({ repo }));
    const flowKey = flow();
    const o = await svc.authenticationOptions({ flowKey, identityId: u.id, userVerification: 'required' });
    const weak = authenticator({ repo, assertion: withoutUv }).getJSON(ORIGIN, o) as AuthenticationResponseJSON;
    expect(await svc.authenticate({ flowKey, identityId: u.id, response: weak })).toMatchObject({ ok: false, reason: 'UV_REQUIRED' });
    const good = authenticator({ repo }).getJSON(ORIGIN, o) as AuthenticationResponseJSON;
    expect(await svc.authenticate({ flowKey, identityId: u.id, response: good })).toEqual({ ok: false, reason: 'CHALLENGE' });
  });

  it('a challenge from another flow: options for flow A, response submitted to flow B', async () => {
    const svc = service();
    const emu = authenticator();
    const u = await enrolled(svc, emu);
    const flowA = flow();
    const flowB = flow();
    const fromA = await assertion(svc, emu, { flowKey: flowA, identityId: u.id });
    // B has no challenge at all, then B has one of its own: both refuse A's response.
    expect(await svc.authenticate({ flowKey: flowB, identityId: u.id, response: fromA })).toEqual({ ok: false, reason: 'CHALLENGE' });
    await svc.authenticationOptions({ flowKey: flowB, identityId: u.id, userVerification: 'required' });
    expect(await svc.authenticate({ flowKey: flowB, identityId: u.id, response: fromA })).toEqual({ ok: false, reason: 'CHALLENGE' });
    // The response still belongs to A and works there (nothing of A was spent by B's attempts).
    expect((await svc.authenticate({ flowKey: flowA, identityId: u.id, response: fromA })).ok).toBe(true);
  });

  it('only the newest options of a flow count: an earlier challenge of the same flow is dead', async () => {
    const svc = service();
    const emu = authenticator();
    const u = await enrolled(svc, emu);
    const flowKey = flow();
    const first = await assertion(svc, emu, { flowKey, identityId: u.id });
    await svc.authenticationOptions({ flowKey, identityId: u.id, userVerification: 'required' });
    expect(await svc.authenticate({ flowKey, identityId: u.id, response: first })).toEqual({ ok: false, reason: 'CHALLENGE' });
  });

  it('an expired challenge', async () => {
    const clock = new ManualClock();
    const svc = service({ clock });
    const emu = authenticator();
    const u = await enrolled(svc, emu);
    const flowKey = flow();
    const response = await assertion(svc, emu, { flowKey, identityId: u.id });
    clock.advance(300_001);
    expect(await svc.authenticate({ flowKey, identityId: u.id, response })).toEqual({ ok: false, reason: 'CHALLENGE' });
  });

  it('a challenge issued for a named user cannot complete a passkey sign-in (identityId null)', async () => {
    const svc = service();
    const emu = authenticator();
    const u = await enrolled(svc, emu);
    const flowKey = flow();
    const response = await assertion(svc, emu, { flowKey, identityId: u.id });
    expect(await svc.authenticate({ flowKey, identityId: null, response })).toMatchObject({ ok: false, reason: 'CHALLENGE' });
  });

  it('wrong origin: an assertion made on another site for our rpID', async () => {
    const svc = service();
    const emu = authenticator();
    const u = await enrolled(svc, emu);
    const flowKey = flow();
    // A client on evil.test that is allowed our rpID (as a related origin) signs our challenge.
    const response = await assertion(svc, emu, { flowKey, identityId: u.id, origin: 'https://evil.test', related: ['https://evil.test'] });
    expect(JSON.parse(Buffer.from(response.response.clientDataJSON, 'base64url').toString()).origin).toBe('https://evil.test');
    expect(await svc.authenticate({ flowKey, identityId: u.id, response })).toEqual({ ok: false, reason: 'SIGNATURE', detail: 'origin' });
    expect(await storedCounter(u.credId)).toBe(0);
  });

  it('wrong rpID: an assertion scoped to the parent domain, presented to an RP on a subdomain', async () => {
    const parent = service();
    const emu = authenticator();
    const u = await enrolled(parent, emu);
    const login = service({ rpID: 'login.threshold.test', origins: ['https://login.threshold.test'] });
    const flowKey = flow();
    const o = await login.authenticationOptions({ flowKey, identityId: u.id, userVerification: 'required' });
    // Right origin for `login`, but the authenticator signs for rpID threshold.test.
    const response = emu.getJSON('https://login.threshold.test', { ...o, rpId: RP_ID }) as AuthenticationResponseJSON;
    expect(await login.authenticate({ flowKey, identityId: u.id, response })).toEqual({ ok: false, reason: 'SIGNATURE', detail: 'rp_id' });
  });

  it('a tampered signature', async () => {
    const svc = service();
    const emu = authenticator();
    const u = await enrolled(svc, emu);
    const flowKey = flow();
    const response = await assertion(svc, emu, { flowKey, identityId: u.id });
    const sig = Buffer.from(response.response.signature, 'base64url');
    sig[sig.length - 1] ^= 1;
    const bad = { ...response, response: { ...response.response, signature: sig.toString('base64url') } };
    expect(await svc.authenticate({ flowKey, identityId: u.id, response: bad })).toMatchObject({ ok: false, reason: 'SIGNATURE' });
    expect(await storedCounter(u.credId)).toBe(0);
  });

  it('UV missing when required: the authenticator signs without verifying the user', async () => {
    const svc = service();
    const repo = new PasskeysCredentialsMemoryRepository();
    const u = await enrolled(svc, authenticator({ repo }));
    const flowKey = flow();
    const response = await assertion(svc, authenticator({ repo, assertion: withoutUv }), { flowKey, identityId: null, uv: 'required' });
    expect(await svc.authenticate({ flowKey, identityId: null, response })).toEqual({ ok: false, reason: 'UV_REQUIRED' });
    expect(await storedCounter(u.credId)).toBe(0);
  });

  it('a credential of another user when identityId is given: WRONG_USER', async () => {
    const svc = service();
    const aliceKey = authenticator();
    const malloryKey = authenticator();
    const alice = await enrolled(svc, aliceKey);
    const mallory = await enrolled(svc, malloryKey);
    const flowKey = flow();
    const o = await svc.authenticationOptions({ flowKey, identityId: alice.id, userVerification: 'required' });
    // Mallory's client ignores the allow-list and answers Alice's challenge with Mallory's key.
    const response = malloryKey.getJSON(ORIGIN, { ...o, allowCredentials: [{ id: mallory.rawId, type: 'public-key' }] }) as AuthenticationResponseJSON;
    expect(response.id).toBe(mallory.rawId);
    expect(await svc.authenticate({ flowKey, identityId: alice.id, response })).toEqual({ ok: false, reason: 'WRONG_USER' });
  });

  it('a userHandle that does not match the credential owner: WRONG_USER', async () => {
    const svc = service();
    const emu = authenticator();
    const u = await enrolled(svc, emu);
    const flowKey = flow();
    const response = await assertion(svc, emu, { flowKey, identityId: null });
    const forged = { ...response, response: { ...response.response, userHandle: Buffer.alloc(16, 7).toString('base64url') } };
    expect(await svc.authenticate({ flowKey, identityId: null, response: forged })).toMatchObject({ ok: false, reason: 'WRONG_USER' });
    expect(await storedCounter(u.credId)).toBe(0);
  });

  it('an unknown credential (removed after the options were issued)', async () => {
    const svc = service();
    const emu = authenticator();
    const u = await enrolled(svc, emu);
    const flowKey = flow();
    const response = await assertion(svc, emu, { flowKey, identityId: u.id });
    await svc.remove(u.id, u.credId);
    expect(await svc.authenticate({ flowKey, identityId: u.id, response })).toEqual({ ok: false, reason: 'UNKNOWN_CREDENTIAL' });
  });

  it('asking for second-factor options for a user without a credential is an error, not an open prompt', async () => {
    const svc = service();
    const id = randomUUID();
    await db.query('INSERT INTO identities (id, email, created_at) VALUES ($1, $2, now())', [id, `${id}@example.test`]);
    const e = await svc.authenticationOptions({ flowKey: flow(), identityId: id, userVerification: 'required' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AppError);
    expect((e as AppError).code).toBe('MFA_FACTOR_NOT_FOUND');
  });
});

describe('WebAuthn signature counter', () => {
  it('a counter going backwards (stored counter raised in the DB) is refused and audited as a clone', async () => {
    const svc = service();
    const emu = authenticator();
    const u = await enrolled(svc, emu);
    await db.query('UPDATE webauthn_credentials SET counter = 50 WHERE id = $1', [u.credId]);
    const flowKey = flow();
    const response = await assertion(svc, emu, { flowKey, identityId: u.id });
    expect(await svc.authenticate({ flowKey, identityId: u.id, response })).toEqual({ ok: false, reason: 'COUNTER', detail: 'regressed' });
    expect(await storedCounter(u.credId)).toBe(50);
    expect(await auditOf(u.id)).toContainEqual({
      type: 'webauthn.clone_suspected',
      reason: 'COUNTER',
      data: { credential: u.credId, storedCounter: 50, presentedCounter: 1, detail: 'regressed' },
    });
  });

  it('a cloned authenticator that lags behind the original is refused', async () => {
    const svc = service();
    const repo = new PasskeysCredentialsMemoryRepository();
    const original = authenticator({ repo });
    const u = await enrolled(svc, original);
    // Copy the key store now (counter 0), then use the original twice (counter 2).
    const cloneRepo = new PasskeysCredentialsMemoryRepository();
    for (const c of repo.loadCredentials()) cloneRepo.saveCredential(c);
    const clone = authenticator({ repo: cloneRepo });
    for (let i = 0; i < 2; i++) {
      const f = flow();
      expect((await svc.authenticate({ flowKey: f, identityId: u.id, response: await assertion(svc, original, { flowKey: f, identityId: u.id }) })).ok).toBe(true);
    }
    const f = flow();
    const res = await svc.authenticate({ flowKey: f, identityId: u.id, response: await assertion(svc, clone, { flowKey: f, identityId: u.id }) });
    expect(res).toMatchObject({ ok: false, reason: 'COUNTER' });
    expect(await storedCounter(u.credId)).toBe(2);
    expect((await auditOf(u.id)).filter((e) => e.type === 'webauthn.clone_suspected')).toHaveLength(1);
  });

  it('two concurrent assertions carrying the same counter cannot both advance it', async () => {
    // Both requests must have read the stored counter (0) before either writes, or the second
    // would be refused by the read-side check and the race would not be exercised: hold every
    // counter write until both have arrived, then release them together on real Postgres.
    let arrived = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const gated: Db = {
      ...db,
      async query<T>(text: string, params?: unknown[]) {
        if (/^\s*UPDATE webauthn_credentials\s+SET counter/.test(text)) {
          if (++arrived === 2) release();
          await gate;
        }
        return db.query<T>(text, params);
      },
    };
    const clock = new ManualClock();
    const svc = createWebAuthnService({ db: gated, clock, audit: createAudit(db, clock), rpID: RP_ID, rpName: 'T', origins: [ORIGIN] });
    const repo = new PasskeysCredentialsMemoryRepository();
    const a = authenticator({ repo });
    const u = await enrolled(svc, a);
    const cloneRepo = new PasskeysCredentialsMemoryRepository();
    for (const c of repo.loadCredentials()) cloneRepo.saveCredential(c);
    const b = authenticator({ repo: cloneRepo });
    const f1 = flow();
    const f2 = flow();
    const r1 = await assertion(svc, a, { flowKey: f1, identityId: u.id });
    const r2 = await assertion(svc, b, { flowKey: f2, identityId: u.id });
    const results = await Promise.all([
      svc.authenticate({ flowKey: f1, identityId: u.id, response: r1 }),
      svc.authenticate({ flowKey: f2, identityId: u.id, response: r2 }),
    ]);
    expect(arrived).toBe(2);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok)).toEqual([{ ok: false, reason: 'COUNTER', detail: 'race' }]);
    expect(await storedCounter(u.credId)).toBe(1);
    expect((await auditOf(u.id)).filter((e) => e.type === 'webauthn.clone_suspected')).toHaveLength(1);
  });
});
