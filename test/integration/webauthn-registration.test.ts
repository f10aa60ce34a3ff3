import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticatorEmulator, PasskeysCredentialsMemoryRepository, WebAuthnEmulator } from 'nid-webauthn-emulator';
import type { RegistrationResponseJSON } from '@simplewebauthn/server';
import { createAudit } from '../../src/audit/audit.ts';
import { createWebAuthnService } from '../../src/authn/methods/webauthn/webauthn.ts';
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

function service(): WebAuthnService {
  const clock = new ManualClock();
  return createWebAuthnService({ db, clock, audit: createAudit(db, clock), rpID: RP_ID, rpName: 'Threshold', origins: [ORIGIN] });
}

async function newUser(): Promise<{ id: string; email: string }> {
  const u = { id: randomUUID(), email: `u-${randomUUID()}@example.test` };
  await db.query('INSERT INTO identities (id, email, created_at) VALUES ($1, $2, now())', [u.id, u.email]);
  return u;
}

/** A software authenticator with its own key store (the library's default store is shared). */
const authenticator = (p: ConstructorParameters<typeof AuthenticatorEmulator>[0] = {}) =>
  new WebAuthnEmulator(new AuthenticatorEmulator({ credentialsRepository: new PasskeysCredentialsMemoryRepository(), ...p }));

/** A security key whose credential lives only on the key (no backup): the emulator's stateless mode. */
const securityKey = () => new WebAuthnEmulator(new AuthenticatorEmulator({ stateless: true }));

const noUv = { userMakeCredentialInteraction: () => ({ options: { uv: false, up: true } }) };

async function expectCode(p: Promise<unknown>, code: string) {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(AppError);
  expect((e as AppError).code).toBe(code);
}

async function countCreds(identityId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM webauthn_credentials WHERE identity_id = $1', [identityId]);
  return rows[0].n;
}

describe('WebAuthn registration', () => {
  it('registers a passkey: discoverable, UV required, stored with transports and backup flags', async () => {
    const svc = service();
    const u = await newUser();
    const flowKey = `session:${randomUUID()}`;
    const options = await svc.registrationOptions({ identityId: u.id, email: u.email, displayName: 'Ada', flowKey, passkey: true });
    expect(options.rp).toEqual({ id: RP_ID, name: 'Threshold' });
    expect(options.authenticatorSelection).toMatchObject({ residentKey: 'required', requireResidentKey: true, userVerification: 'required' });
    expect(options.excludeCredentials).toEqual([]);
    expect(Buffer.from(options.user.id, 'base64url').toString('hex')).toBe(u.id.replace(/-/g, ''));

    const response = authenticator().createJSON(ORIGIN, options) as RegistrationResponseJSON;
    const saved = await svc.register({ identityId: u.id, flowKey, response, label: '  Laptop  ' });
    expect(saved).toMatchObject({ label: 'Laptop', deviceType: 'multiDevice', backedUp: true, discoverable: true });

    const { rows } = await db.query<Record<string, unknown>>('SELECT * FROM webauthn_credentials WHERE id = $1', [saved.id]);
    expect(rows[0]).toMatchObject({
      identity_id: u.id,
      credential_id: response.id,
      transports: ['usb'],
      device_type: 'multiDevice',
      backed_up: true,
      uv_initialized: true,
      discoverable: true,
    });
    expect(Number(rows[0].counter)).toBe(0);
    const audit = await db.query<{ type: string; subject: string }>(
      `SELECT type, subject FROM audit_events WHERE subject = $1 ORDER BY seq`,
      [u.id],
    );
    expect(audit.rows).toEqual([{ type: 'mfa.enrolled', subject: u.id }]);
  });

  it('registers a device-bound security key with preferred UV and lists existing keys in excludeCredentials', async () => {
    const svc = service();
    const u = await newUser();
    const flowKey = `flow-${randomUUID()}`;
    const o1 = await svc.registrationOptions({ identityId: u.id, email: u.email, displayName: 'Ada', flowKey, passkey: false });
    expect(o1.authenticatorSelection).toMatchObject({ residentKey: 'preferred', userVerification: 'preferred' });
    const key = securityKey();
    const r1 = key.createJSON(ORIGIN, o1) as RegistrationResponseJSON;
    const saved = await svc.register({ identityId: u.id, flowKey, response: r1 });
    expect(saved).toMatchObject({ label: 'Security key', deviceType: 'singleDevice', backedUp: false });

    const o2 = await svc.registrationOptions({ identityId: u.id, email: u.email, displayName: 'Ada', flowKey, passkey: false });
    expect(o2.excludeCredentials).toEqual([{ id: r1.id, type: 'public-key', transports: ['usb'] }]);
  });

  it('an authenticator that already holds a credential refuses to create another (excludeCredentials)', async () => {
    const svc = service();
    const u = await newUser();
    const emu = authenticator();
    const flowKey = `flow-${randomUUID()}`;
    const o1 = await svc.registrationOptions({ identityId: u.id, email: u.email, displayName: 'Ada', flowKey, passkey: true });
    await svc.register({ identityId: u.id, flowKey, response: emu.createJSON(ORIGIN, o1) as RegistrationResponseJSON });
    const o2 = await svc.registrationOptions({ identityId: u.id, email: u.email, displayName: 'Ada', flowKey, passkey: true });
    expect(() => emu.createJSON(ORIGIN, o2)).toThrow(/excluded|NotAllowed/i);
  });

  it('refuses a passkey created without user verification, and stores nothing', async () => {
    const svc = service();
    const u = await newUser();
    const flowKey = `flow-${randomUUID()}`;
    const o = await svc.registrationOptions({ identityId: u.id, email: u.email, displayName: 'Ada', flowKey, passkey: true });
    const r = authenticator(noUv).createJSON(ORIGIN, o) as RegistrationResponseJSON;
    await expectCode(svc.register({ identityId: u.id, flowKey, response: r }), 'WEBAUTHN_FAILED');
    expect(await countCreds(u.id)).toBe(0);
  });

  it('accepts a security key without UV when UV was only preferred', async () => {
    const svc = service();
    const u = await newUser();
    const flowKey = `flow-${randomUUID()}`;
    const o = await svc.registrationOptions({ identityId: u.id, email: u.email, displayName: 'Ada', flowKey, passkey: false });
    const r = authenticator(noUv).createJSON(ORIGIN, o) as RegistrationResponseJSON;
    await svc.register({ identityId: u.id, flowKey, response: r });
    const { rows } = await db.query<{ uv_initialized: boolean }>('SELECT uv_initialized FROM webauthn_credentials WHERE identity_id = $1', [u.id]);
    expect(rows).toEqual([{ uv_initialized: false }]);
  });

  it('spends the challenge: the same registration response submitted twice fails the second time', async () => {
    const svc = service();
    const u = await newUser();
    const flowKey = `flow-${randomUUID()}`;
    const o = await svc.registrationOptions({ identityId: u.id, email: u.email, displayName: 'Ada', flowKey, passkey: true });
    const r = authenticator().createJSON(ORIGIN, o) as RegistrationResponseJSON;
    await svc.register({ identityId: u.id, flowKey, response: r });
    await expectCode(svc.register({ identityId: u.id, flowKey, response: r }), 'WEBAUTHN_FAILED');
    expect(await countCreds(u.id)).toBe(1);
  });

  it('refuses a credential id that is already registered, even to another account (squatting)', async () => {
    const svc = service();
    const victim = await newUser();
    const attacker = await newUser();
    const f1 = `flow-${randomUUID()}`;
    const o1 = await svc.registrationOptions({ identityId: victim.id, email: victim.email, displayName: 'V', flowKey: f1, passkey: false });
    const r1 = securityKey().createJSON(ORIGIN, o1) as RegistrationResponseJSON;
    await svc.register({ identityId: victim.id, flowKey: f1, response: r1 });

    // A 'none' attestation signs nothing, so the victim's attestation object (credential id and
    // public key) can be replayed under a fresh challenge of the attacker's own flow.
    const f2 = `flow-${randomUUID()}`;
    const o2 = await svc.registrationOptions({ identityId: attacker.id, email: attacker.email, displayName: 'A', flowKey: f2, passkey: false });
    const clientData = { type: 'webauthn.create', challenge: o2.challenge, origin: ORIGIN, crossOrigin: false };
    const forged: RegistrationResponseJSON = {
      ...r1,
      response: { ...r1.response, clientDataJSON: Buffer.from(JSON.stringify(clientData)).toString('base64url') },
    };
    await expectCode(svc.register({ identityId: attacker.id, flowKey: f2, response: forged }), 'WEBAUTHN_FAILED');
    expect(await countCreds(attacker.id)).toBe(0);
    expect(await countCreds(victim.id)).toBe(1);
  });

  it('refuses a response to options issued for another flow', async () => {
    const svc = service();
    const u = await newUser();
    const flowA = `flow-${randomUUID()}`;
    const flowB = `flow-${randomUUID()}`;
    const oA = await svc.registrationOptions({ identityId: u.id, email: u.email, displayName: 'Ada', flowKey: flowA, passkey: true });
    await svc.registrationOptions({ identityId: u.id, email: u.email, displayName: 'Ada', flowKey: flowB, passkey: true });
    const r = authenticator().createJSON(ORIGIN, oA) as RegistrationResponseJSON;
    await expectCode(svc.register({ identityId: u.id, flowKey: flowB, response: r }), 'WEBAUTHN_FAILED');
    // Flow A's own challenge is untouched by the failed attempt in B.
    await svc.register({ identityId: u.id, flowKey: flowA, response: r });
  });

  it('refuses a response bound to the flow but registered for another identity', async () => {
    const svc = service();
    const u = await newUser();
    const other = await newUser();
    const flowKey = `flow-${randomUUID()}`;
    const o = await svc.registrationOptions({ identityId: u.id, email: u.email, displayName: 'Ada', flowKey, passkey: true });
    const r = authenticator().createJSON(ORIGIN, o) as RegistrationResponseJSON;
    await expectCode(svc.register({ identityId: other.id, flowKey, response: r }), 'WEBAUTHN_FAILED');
    expect(await countCreds(other.id)).toBe(0);
  });

  it('refuses a registration made on another origin', async () => {
    const svc = service();
    const u = await newUser();
    const flowKey = `flow-${randomUUID()}`;
    const o = await svc.registrationOptions({ identityId: u.id, email: u.email, displayName: 'Ada', flowKey, passkey: true });
    // The client is on evil.test but claims our rpID (allowed to it as a "related origin").
    const r = authenticator().createJSON('https://evil.test', o, ['https://evil.test']) as RegistrationResponseJSON;
    await expectCode(svc.register({ identityId: u.id, flowKey, response: r }), 'WEBAUTHN_FAILED');
  });

  it('refuses an expired challenge', async () => {
    const clock = new ManualClock();
    const svc = createWebAuthnService({ db, clock, audit: createAudit(db, clock), rpID: RP_ID, rpName: 'T', origins: [ORIGIN], challengeTtlSeconds: 60 });
    const u = await newUser();
    const flowKey = `flow-${randomUUID()}`;
    const o = await svc.registrationOptions({ identityId: u.id, email: u.email, displayName: 'Ada', flowKey, passkey: true });
    expect(o.timeout).toBe(60_000);
    const r = authenticator().createJSON(ORIGIN, o) as RegistrationResponseJSON;
    clock.advance(60_001);
    await expectCode(svc.register({ identityId: u.id, flowKey, response: r }), 'WEBAUTHN_FAILED');
  });
});

describe('WebAuthn credential management', () => {
  it('lists, renames and removes only the owner’s credentials, auditing each change', async () => {
    const svc = service();
    const u = await newUser();
    const stranger = await newUser();
    const flowKey = `flow-${randomUUID()}`;
    const o = await svc.registrationOptions({ identityId: u.id, email: u.email, displayName: 'Ada', flowKey, passkey: true });
    const saved = await svc.register({ identityId: u.id, flowKey, response: authenticator().createJSON(ORIGIN, o) as RegistrationResponseJSON });

    const list = await svc.list(u.id);
    expect(list).toEqual([
      expect.objectContaining({ id: saved.id, label: 'Passkey', deviceType: 'multiDevice', discoverable: true, transports: ['usb'], lastUsedAt: null }),
    ]);
    expect(await svc.list(stranger.id)).toEqual([]);

    await expectCode(svc.rename(stranger.id, saved.id, 'mine now'), 'MFA_FACTOR_NOT_FOUND');
    await expectCode(svc.rename(u.id, saved.id, '   '), 'VALIDATION_FAILED');
    await expectCode(svc.rename(u.id, saved.id, 'x'.repeat(65)), 'VALIDATION_FAILED');
    await svc.rename(u.id, saved.id, 'Phone');
    expect((await svc.list(u.id))[0].label).toBe('Phone');

    await expectCode(svc.remove(stranger.id, saved.id), 'MFA_FACTOR_NOT_FOUND');
    await expectCode(svc.remove(u.id, 'not-a-uuid'), 'MFA_FACTOR_NOT_FOUND');
    await svc.remove(u.id, saved.id);
    expect(await svc.list(u.id)).toEqual([]);
    await expectCode(svc.remove(u.id, saved.id), 'MFA_FACTOR_NOT_FOUND');

    const { rows } = await db.query<{ type: string }>('SELECT type FROM audit_events WHERE subject = $1 ORDER BY seq', [u.id]);
    expect(rows.map((r) => r.type)).toEqual(['mfa.enrolled', 'mfa.renamed', 'mfa.removed']);
  });
});
