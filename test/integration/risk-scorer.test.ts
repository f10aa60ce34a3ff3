import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.ts';
import { openGeo } from '../../src/risk/geo.ts';
import { DEFAULT_POLICY, loadActivePolicy, RiskPolicyError, type PolicyDocument } from '../../src/risk/policy.ts';
import { createRiskScorer, type RiskScorer } from '../../src/risk/scorer.ts';
import { createTestDb } from '../helpers/db.ts';

const T = Date.UTC(2026, 0, 10, 12);
const HOUR = 3_600_000;
const config = { RISK_DENY_CIDRS: '203.0.113.0/24, 5.9.0.0/16', RISK_MAX_TRAVEL_KMH: 900, RISK_FAILURE_WINDOW_SECONDS: 3600 };

let t: Awaited<ReturnType<typeof createTestDb>>;
let db: Db;
let scorer: RiskScorer;
let alice: string;

async function policyRow(doc: unknown, version: string, active: boolean, at = T): Promise<void> {
  await db.query('INSERT INTO risk_policies (version, document, active, created_at) VALUES ($1, $2, $3, $4)', [
    version,
    JSON.stringify(doc),
    active,
    new Date(at),
  ]);
}

beforeAll(async () => {
  t = await createTestDb();
  db = t.db;
  scorer = createRiskScorer({ db, geo: await openGeo(), config });
  alice = randomUUID();
  await db.query('INSERT INTO identities (id, email, created_at) VALUES ($1, $2, $3)', [alice, 'alice@example.test', new Date(T - 90 * 24 * HOUR)]);
  await db.query(
    `INSERT INTO login_events (id, identity_id, device_id, ip, country, latitude, longitude, outcome, created_at, net_prefix, net_key, asn, net_type)
     VALUES ($1, $2, 'laptop', '81.2.69.142', 'GB', 51.5143, -0.0912, 'succeeded', $3, '81.2.69.0/24', '81.2.69.0/24', 20712, 'residential')`,
    [randomUUID(), alice, new Date(T - HOUR)],
  );
});
afterAll(async () => {
  await t?.drop();
});

describe('createRiskScorer', () => {
  it('rejects a bad deny list when created', () => {
    expect(() => createRiskScorer({ db, geo: { lookup: () => null }, config: { ...config, RISK_DENY_CIDRS: '10.0.0.0/8,bogus' } })).toThrow('bogus');
  });

  it('allows a known device from a known place under the default policy', async () => {
    const a = await scorer.score({ identityId: alice, deviceId: 'laptop', ip: '81.2.69.142', at: T });
    expect(a).toMatchObject({ score: 0, decision: 'allow', level: 'low', reasons: ['KNOWN_DEVICE', 'KNOWN_NETWORK'], policyVersion: 'default-3', country: 'GB' });
    expect(a.lat).toBeCloseTo(51.5, 0);
    expect(a.lon).toBeCloseTo(-0.09, 1);
  });

  it('steps up a new device on a new network in a new country, London → Sydney in an hour to the phishing-resistant band, and denies a deny-listed cloud host after failures', async () => {
    const us = await scorer.score({ identityId: alice, deviceId: 'phone', ip: '8.8.8.8', at: T + 48 * HOUR });
    expect(us).toMatchObject({
      score: 45,
      decision: 'step_up',
      level: 'medium',
      reasons: ['NEW_DEVICE_NEW_NETWORK', 'NEW_COUNTRY', 'NEW_DEVICE', 'NEW_NETWORK'],
      country: 'US',
    });
    // Sydney through Cloudflare (AS13335, classed proxy) an hour after London.
    const au = await scorer.score({ identityId: alice, deviceId: 'phone', ip: '1.1.1.1', at: T });
    expect(au).toMatchObject({
      score: 115,
      decision: 'step_up',
      level: 'high',
      requirePhishingResistant: true,
      reasons: ['IMPOSSIBLE_TRAVEL', 'NEW_DEVICE_NEW_NETWORK', 'ANONYMIZING_NETWORK', 'NEW_COUNTRY', 'NEW_DEVICE', 'NEW_NETWORK'],
      country: 'AU',
    });
    expect(au.signals.details).toMatchObject({ asn: 13335, connectionType: 'proxy', prefix: '1.1.1.0/24', networkKey: 'AS13335' });
    const listed = await scorer.score({ identityId: alice, deviceId: 'phone', ip: '5.9.0.1', at: T });
    expect(listed).toMatchObject({ decision: 'step_up', level: 'high', score: 115 });
    expect(listed.reasons.slice(0, 2)).toEqual(['SUSPICIOUS_IP', 'NEW_DEVICE_NEW_NETWORK']);
    expect(listed.reasons).toContain('HOSTING_NETWORK');
    // ...and after three failures on the account, the same attempt is denied.
    for (let i = 0; i < 3; i++) {
      await db.query(`INSERT INTO login_events (id, identity_id, ip, outcome, created_at) VALUES ($1, $2, '5.9.0.1', 'failed', $3)`, [randomUUID(), alice, new Date(T - 60_000)]);
    }
    const denied = await scorer.score({ identityId: alice, deviceId: 'phone', ip: '5.9.0.1', at: T });
    expect(denied).toMatchObject({ decision: 'deny', level: 'high', score: 130 });
    expect(denied.signals.details.deniedCidr).toBe('5.9.0.0/16');
    await db.query("DELETE FROM login_events WHERE outcome = 'failed'");
  });

  it('reports null location for an unlocatable IP', async () => {
    const a = await scorer.score({ identityId: null, deviceId: null, ip: '10.0.0.1', at: T });
    expect(a).toMatchObject({ country: null, lat: null, lon: null, reasons: ['NEW_DEVICE'], decision: 'allow' });
    expect(a.signals.details.connectionType).toBe('unknown');
  });

  it('does not write anything', async () => {
    const before = await db.query<{ n: string }>('SELECT count(*) AS n FROM login_events');
    await scorer.score({ identityId: alice, deviceId: 'laptop', ip: '81.2.69.142', at: T });
    const after = await db.query<{ n: string }>('SELECT count(*) AS n FROM login_events');
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });

  describe('policy', () => {
    const strict: PolicyDocument = {
      version: 'strict-2',
      weights: { NEW_DEVICE: 40, NEW_COUNTRY: 20, IMPOSSIBLE_TRAVEL: 100, SUSPICIOUS_IP: 100, FAILED_ATTEMPTS: 15 },
      failedAttempts: { threshold: 1 },
      thresholds: { stepUp: 30, deny: 60 },
    };

    it('starts with default-3 active (migration 0021), default-2 stored inactive, and uses the default when no row is active', async () => {
      const { rows } = await db.query<{ version: string; active: boolean }>('SELECT version, active FROM risk_policies ORDER BY version');
      expect(rows).toEqual([{ version: 'default-2', active: false }, { version: 'default-3', active: true }]);
      expect(await loadActivePolicy(db)).toEqual(DEFAULT_POLICY);
      await db.query('UPDATE risk_policies SET active = false');
      await policyRow({ ...strict, version: 'draft-1' }, 'draft-1', false);
      expect(await loadActivePolicy(db)).toEqual(DEFAULT_POLICY);
    });

    it('lets the active policy row override the default, including the failure threshold', async () => {
      await policyRow(strict, 'strict-2', true);
      expect(await loadActivePolicy(db)).toEqual(strict);
      const newDevice = await scorer.score({ identityId: alice, deviceId: 'tablet', ip: '81.2.69.142', at: T });
      expect(newDevice).toMatchObject({ score: 40, decision: 'step_up', policyVersion: 'strict-2' });

      await db.query(
        `INSERT INTO login_events (id, identity_id, ip, outcome, created_at) VALUES ($1, $2, '81.2.69.142', 'failed', $3)`,
        [randomUUID(), alice, new Date(T - 60_000)],
      );
      const oneFailure = await scorer.score({ identityId: alice, deviceId: 'tablet', ip: '81.2.69.142', at: T });
      expect(oneFailure).toMatchObject({ score: 55, decision: 'step_up', reasons: ['NEW_DEVICE', 'FAILED_ATTEMPTS', 'KNOWN_NETWORK'] });
      expect(oneFailure.signals.FAILED_ATTEMPTS).toBe(true);
    });

    it('fails closed on an invalid active document instead of scoring under the default', async () => {
      await db.query('UPDATE risk_policies SET active = false');
      await policyRow({ ...strict, version: 'broken-3', weights: { ...strict.weights, TOR: 5 } }, 'broken-3', true);
      await expect(loadActivePolicy(db)).rejects.toBeInstanceOf(RiskPolicyError);
      await expect(scorer.score({ identityId: alice, deviceId: 'laptop', ip: '81.2.69.142', at: T })).rejects.toThrow('broken-3');
    });

    it('rejects an active row whose document names another version', async () => {
      await db.query('UPDATE risk_policies SET active = false');
      await policyRow({ ...strict, version: 'other' }, 'mismatch-4', true);
      await expect(loadActivePolicy(db)).rejects.toThrow(/mismatch-4.*other/);
    });
  });
});
