import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/db.ts';
import { deviceNewSql, RISK_EVENT_COLUMNS } from '../../src/risk/event-columns.ts';
import { openGeo } from '../../src/risk/geo.ts';
import { MemoryRiskHistory, type RecordedOutcome, type RiskHistory } from '../../src/risk/history.ts';
import { createPgRiskHistory, HISTORY_SQL } from '../../src/risk/history-pg.ts';
import { createNetworks, type NetworkView, type Networks } from '../../src/risk/network.ts';
import { DEFAULT_POLICY } from '../../src/risk/policy.ts';
import { scoreAttempt, toRecorded } from '../../src/risk/score.ts';
import type { RiskInput } from '../../src/risk/signals.ts';
import { createTestDb } from '../helpers/db.ts';

/**
 * Every signal against both history implementations — Postgres (live) and memory (back-test) —
 * fed the same attempts, so they cannot drift apart: each case asserts the same decision from both.
 */
const T = Date.UTC(2026, 2, 2, 9);
const MIN = 60_000;
const HOUR = 60 * MIN;

const IP = {
  home: '81.2.69.142', // Andrews & Arnold, London (residential)
  homeSame24: '81.2.69.7',
  comcast: '23.24.0.10', // Comcast (residential), another /24 and AS
  office: '23.30.0.1', // Comcast business line: an office NAT
  aws: '3.2.64.10', // Amazon AWS (hosting)
  aws2: '3.2.65.20',
  tmobile1: '23.18.1.1', // T-Mobile US (mobile), two /24s of one AS
  tmobile2: '24.221.9.9',
};

let t: Awaited<ReturnType<typeof createTestDb>>;
let db: Db;
let real: Networks;

const LONDON = { country: 'GB', lat: 51.51, lon: -0.09 };
/**
 * Real network data (AS, organisation, connection type, prefix), but every address placed in
 * London unless a case places it elsewhere: these cases are about networks, not GeoIP.
 */
function networksWith(overrides: Record<string, Partial<NetworkView>>): Networks {
  return { describe: (ip) => ({ ...real.describe(ip), geo: LONDON, ...overrides[ip] }) };
}
const london = (): Networks => networksWith({});

interface Harness {
  name: string;
  history: RiskHistory;
  record(input: RiskInput, outcome: RecordedOutcome, net: NetworkView): Promise<void>;
}

function memoryHarness(): Harness {
  const h = new MemoryRiskHistory();
  return {
    name: 'memory',
    history: h,
    async record(input, outcome, net) {
      h.record(toRecorded(input, outcome, net, h.isDeviceNew(input.identityId, input.deviceId)));
    },
  };
}

function pgHarness(): Harness {
  return {
    name: 'postgres',
    history: createPgRiskHistory(db),
    async record(input, outcome, net) {
      const r = toRecorded(input, outcome, net, false);
      await db.query(
        `INSERT INTO login_events (id, identity_id, device_id, ip, country, latitude, longitude, outcome, created_at,
                                   ${RISK_EVENT_COLUMNS.join(', ')}, device_new)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, ${deviceNewSql('$2', '$3')})`,
        [randomUUID(), r.identityId, r.deviceId, r.ip, r.country, r.lat, r.lon, r.outcome, new Date(r.at),
          r.prefix, r.networkKey, r.asn, r.networkType, r.uaFamily, r.radiusKm],
      );
    },
  };
}

beforeAll(async () => {
  t = await createTestDb();
  db = t.db;
  real = createNetworks({ geo: await openGeo() });
});
afterAll(async () => {
  await t?.drop();
});

describe.each([{ make: memoryHarness }, { make: pgHarness }])('risk history ($make.name)', ({ make }) => {
  let h: Harness;
  beforeAll(() => {
    h = make();
  });

  async function identity(): Promise<string> {
    const id = randomUUID();
    await db.query('INSERT INTO identities (id, email, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [id, `${id}@example.test`, new Date(T - 90 * 24 * HOUR)]);
    return id;
  }

  /** Score, then record what the live flow would (allow → succeeded unless told otherwise). */
  async function attempt(i: Partial<RiskInput> & { identityId: string | null; ip: string; at: number }, o: { outcome?: RecordedOutcome; networks?: Networks } = {}) {
    const input: RiskInput = { deviceId: null, userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/130.0 Safari/537.36', ...i };
    const networks = o.networks ?? london();
    const r = await scoreAttempt({ input, history: h.history, networks, policy: DEFAULT_POLICY });
    const outcome = o.outcome ?? (r.assessment.decision === 'deny' ? 'denied' : 'succeeded');
    await h.record(input, outcome, r.network);
    return r.assessment;
  }
  const failed = async (i: Partial<RiskInput> & { identityId: string | null; ip: string; at: number }) => {
    const input: RiskInput = { deviceId: null, ...i };
    await h.record(input, 'failed', london().describe(input.ip));
  };

  it('knows a network by its /24 for fixed lines: same /24 known, another /24 new, new device + new network steps up', async () => {
    const id = await identity();
    expect((await attempt({ identityId: id, deviceId: 'laptop', ip: IP.home, at: T })).reasons).toEqual(['NEW_DEVICE']);
    expect(await attempt({ identityId: id, deviceId: 'laptop', ip: IP.homeSame24, at: T + HOUR })).toMatchObject({ decision: 'allow', reasons: ['KNOWN_DEVICE', 'KNOWN_NETWORK'] });
    expect(await attempt({ identityId: id, deviceId: 'laptop', ip: IP.comcast, at: T + 2 * HOUR })).toMatchObject({ decision: 'allow', reasons: ['NEW_NETWORK', 'KNOWN_DEVICE'] });
    const thief = await attempt({ identityId: id, deviceId: 'thief', ip: '81.2.70.1', at: T + 3 * HOUR }, { outcome: 'stepped_up' });
    expect(thief).toMatchObject({ decision: 'step_up' });
    expect(thief.reasons).toEqual(['NEW_DEVICE_NEW_NETWORK', 'NEW_DEVICE', 'NEW_NETWORK']);
    // A new device at home (cookies cleared) is not stepped up: the network is the user's.
    expect(await attempt({ identityId: id, deviceId: 'new-browser', ip: IP.homeSame24, at: T + 4 * HOUR })).toMatchObject({ decision: 'allow', reasons: ['NEW_DEVICE', 'KNOWN_NETWORK'] });
  });

  it('knows a mobile carrier by its AS: a phone hopping CGNAT /24s stays on a known network', async () => {
    const id = await identity();
    await attempt({ identityId: id, deviceId: 'phone', ip: IP.tmobile1, at: T });
    const next = await attempt({ identityId: id, deviceId: 'phone', ip: IP.tmobile2, at: T + HOUR });
    expect(next).toMatchObject({ decision: 'allow', reasons: ['KNOWN_DEVICE', 'KNOWN_NETWORK'] });
    expect(next.signals.details).toMatchObject({ connectionType: 'mobile', networkKey: 'AS21928' });
  });

  it('flags a hosting network the user never used, but not a cloud egress they use (corporate gateway)', async () => {
    const victim = await identity();
    await attempt({ identityId: victim, deviceId: 'laptop', ip: IP.home, at: T });
    const bot = await attempt({ identityId: victim, deviceId: null, ip: IP.aws, at: T + HOUR }, { outcome: 'stepped_up' });
    expect(bot.decision).toBe('step_up');
    expect(bot.reasons).toEqual(expect.arrayContaining(['HOSTING_NETWORK', 'NEW_DEVICE_NEW_NETWORK']));

    const worker = await identity();
    await attempt({ identityId: worker, deviceId: 'work-laptop', ip: IP.aws, at: T });
    // Another exit of the same provider: the gateway is known by its AS.
    const again = await attempt({ identityId: worker, deviceId: 'work-laptop', ip: IP.aws2, at: T + HOUR });
    expect(again).toMatchObject({ decision: 'allow', reasons: ['KNOWN_DEVICE', 'KNOWN_NETWORK'] });
    expect(again.signals.HOSTING_NETWORK).toBe(false);
  });

  it('IP_VELOCITY: one address working through accounts with new devices fires; an office NAT of known devices does not', async () => {
    const base = T + 10 * 24 * HOUR;
    // Ten colleagues behind one office address, each on their own laptop, for days.
    const colleagues = await Promise.all(Array.from({ length: 10 }, () => identity()));
    for (let day = 0; day < 3; day++) {
      for (const [k, c] of colleagues.entries()) {
        const a = await attempt({ identityId: c, deviceId: `desk-${c}`, ip: IP.office, at: base + day * 24 * HOUR + k * MIN });
        expect(a.signals.IP_VELOCITY, `day ${day} colleague ${k}`).toBe(false);
        expect(a.decision).toBe('allow');
      }
    }
    // Victims with a history elsewhere, then an attacker tries them one after another from one address.
    const victims = await Promise.all(Array.from({ length: 4 }, () => identity()));
    for (const v of victims) await attempt({ identityId: v, deviceId: `own-${v}`, ip: IP.home, at: base - HOUR });
    const attacker = '23.24.5.5';
    const results = [];
    for (const [k, v] of victims.entries()) {
      results.push(await attempt({ identityId: v, deviceId: `bot-${k}`, ip: attacker, at: base + k * MIN }, { outcome: 'stepped_up' }));
    }
    expect(results.map((r) => r.signals.IP_VELOCITY)).toEqual([false, false, true, true]);
    expect(results[3].signals.details.ipAccounts).toBe(3);
    expect(results[3].reasons).toContain('IP_VELOCITY');
    // The office still passes, right after.
    const c = await attempt({ identityId: colleagues[0], deviceId: `desk-${colleagues[0]}`, ip: IP.office, at: base + 10 * MIN });
    expect(c).toMatchObject({ decision: 'allow', reasons: ['KNOWN_DEVICE', 'KNOWN_NETWORK'] });
  });

  it('DEVICE_VELOCITY: one browser profile on many accounts fires; a shared workstation whose users know it does not', async () => {
    const base = T + 20 * 24 * HOUR;
    const students = await Promise.all(Array.from({ length: 5 }, () => identity()));
    // Each student signed in on the lab machine once (weeks ago, stepped up and passed).
    for (const [k, s] of students.entries()) await attempt({ identityId: s, deviceId: 'lab-pc-1', ip: IP.office, at: base - 30 * 24 * HOUR + k * HOUR });
    for (const [k, s] of students.entries()) {
      const a = await attempt({ identityId: s, deviceId: 'lab-pc-1', ip: IP.office, at: base + k * MIN });
      expect(a.signals.DEVICE_VELOCITY, `student ${k}`).toBe(false);
      expect(a.reasons).toContain('KNOWN_DEVICE');
    }
    const victims = await Promise.all(Array.from({ length: 3 }, () => identity()));
    for (const v of victims) await attempt({ identityId: v, deviceId: `own-${v}`, ip: IP.home, at: base - HOUR });
    const out = [];
    for (const [k, v] of victims.entries()) {
      out.push(await attempt({ identityId: v, deviceId: 'antidetect-profile-7', ip: `23.24.${10 + k}.1`, at: base + k * 5 * MIN }, { outcome: 'stepped_up' }));
    }
    expect(out.map((r) => r.signals.DEVICE_VELOCITY)).toEqual([false, true, true]);
    expect(out[2].signals.details.deviceAccounts).toBe(2);
  });

  it('PASSWORD_SPRAY: wrong passwords on many accounts from one address fire; colleagues mistyping on known devices do not', async () => {
    const base = T + 30 * 24 * HOUR;
    const staff = await Promise.all(Array.from({ length: 5 }, () => identity()));
    for (const s of staff) await attempt({ identityId: s, deviceId: `pc-${s}`, ip: IP.office, at: base - HOUR });
    for (const [k, s] of staff.entries()) await failed({ identityId: s, deviceId: `pc-${s}`, ip: IP.office, at: base + k * MIN });
    const typo = await attempt({ identityId: staff[0], deviceId: `pc-${staff[0]}`, ip: IP.office, at: base + 10 * MIN });
    expect(typo.signals.PASSWORD_SPRAY).toBe(false);
    expect(typo.decision).toBe('allow');

    const targets = await Promise.all(Array.from({ length: 4 }, () => identity()));
    for (const v of targets) await attempt({ identityId: v, deviceId: `own-${v}`, ip: IP.home, at: base - HOUR });
    const sprayer = '23.24.99.9';
    for (const v of targets.slice(0, 3)) await failed({ identityId: v, deviceId: null, ip: sprayer, at: base + MIN });
    // Identifiers that do not exist count as one account together, however many.
    for (let k = 0; k < 5; k++) await failed({ identityId: null, deviceId: null, ip: sprayer, at: base + 2 * MIN });
    const hit = await attempt({ identityId: targets[3], deviceId: null, ip: sprayer, at: base + 3 * MIN }, { outcome: 'stepped_up' });
    expect(hit.signals.PASSWORD_SPRAY).toBe(true);
    expect(hit.signals.details.ipFailedAccounts).toBe(4);
    // One address failing across accounts also counts as velocity and as IP failures: denied.
    expect(hit.decision).toBe('deny');
    expect(hit.reasons.slice(0, 3)).toEqual(['IP_VELOCITY', 'PASSWORD_SPRAY', 'NEW_DEVICE_NEW_NETWORK']);
  });

  it('forgets cross-account activity outside the velocity window', async () => {
    const base = T + 40 * 24 * HOUR;
    const victims = await Promise.all(Array.from({ length: 3 }, () => identity()));
    for (const v of victims) await attempt({ identityId: v, deviceId: `own-${v}`, ip: IP.home, at: base - 30 * HOUR });
    const ip = '23.24.77.7';
    await attempt({ identityId: victims[0], deviceId: 'b0', ip, at: base - 25 * HOUR }, { outcome: 'stepped_up' });
    await attempt({ identityId: victims[1], deviceId: 'b1', ip, at: base - 25 * HOUR }, { outcome: 'stepped_up' });
    const late = await attempt({ identityId: victims[2], deviceId: 'b2', ip, at: base }, { outcome: 'stepped_up' });
    expect(late.signals.details.ipAccounts).toBe(0);
    expect(late.signals.IP_VELOCITY).toBe(false);
  });

  describe('IMPOSSIBLE_TRAVEL', () => {
    const EDINBURGH = { country: 'GB', lat: 55.95, lon: -3.19 }; // ~530 km
    const NEW_YORK = { country: 'US', lat: 40.71, lon: -74.0 };

    it('does not fire for the owner’s phone whose carrier gateway geolocates hundreds of km away', async () => {
      const id = await identity();
      const nets = networksWith({
        [IP.home]: { geo: LONDON },
        [IP.tmobile1]: { geo: EDINBURGH, type: 'mobile' },
      });
      await attempt({ identityId: id, deviceId: 'phone', ip: IP.home, at: T }, { networks: nets });
      const hop = await attempt({ identityId: id, deviceId: 'phone', ip: IP.tmobile1, at: T + 20 * MIN }, { networks: nets });
      expect(hop.signals.IMPOSSIBLE_TRAVEL).toBe(false);
      expect(hop.decision).toBe('allow');
    });

    it('does not fire for home-routed roaming (known device on the home egress), fires for a new device across the ocean', async () => {
      const id = await identity();
      const nets = networksWith({ [IP.home]: { geo: LONDON }, [IP.comcast]: { geo: NEW_YORK }, [IP.homeSame24]: { geo: NEW_YORK } });
      await attempt({ identityId: id, deviceId: 'phone', ip: IP.comcast, at: T }, { networks: nets }); // abroad, hotel
      await attempt({ identityId: id, deviceId: 'phone', ip: IP.home, at: T + 30 * 24 * HOUR }, { networks: nets }); // back home
      // Half an hour after the London login, a new device on a new network in New York: a phisher.
      const phish = await attempt({ identityId: id, deviceId: 'evil', ip: '23.24.50.5', at: T + 30 * 24 * HOUR + 30 * MIN }, {
        networks: networksWith({ '23.24.50.5': { geo: NEW_YORK } }),
        outcome: 'stepped_up',
      });
      expect(phish.signals.IMPOSSIBLE_TRAVEL).toBe(true);
      expect(phish.level).toBe('high');
      expect(phish.requirePhishingResistant).toBe(true);
      // The owner's phone an hour after London, egressing from the New York network it used before.
      const roaming = await attempt({ identityId: id, deviceId: 'phone', ip: IP.comcast, at: T + 30 * 24 * HOUR + HOUR }, { networks: nets });
      expect(roaming.signals.details.travelDiscounted).toBe(true);
      expect(roaming.signals.IMPOSSIBLE_TRAVEL).toBe(false);
      expect(roaming.decision).toBe('allow');
    });
  });
});

describe('history SQL', () => {
  it('is one statement that uses the indexes (no sequential scan of login_events)', async () => {
    await db.query('SET enable_seqscan = off');
    try {
      const { rows } = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${HISTORY_SQL}`, [
        randomUUID(), 'dev', '81.2.69.0/24', 20712, 'Chrome/Windows', '81.2.69.142',
        new Date(T).toISOString(), new Date(T - HOUR).toISOString(), new Date(T - 24 * HOUR).toISOString(), '81.2.69.0/24',
      ]);
      const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(plan).not.toMatch(/Seq Scan on login_events/);
      // Which per-account index the planner picks on a tiny table varies; the velocity ones are specific.
      for (const ix of ['login_events_ip_newdev', 'login_events_prefix_newdev', 'login_events_device_newdev']) {
        expect(plan, ix).toContain(ix);
      }
    } finally {
      await db.query('RESET enable_seqscan');
    }
  });
});
