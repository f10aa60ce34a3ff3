import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REASONS } from '../../src/risk/reasons.ts';
import { Client, device, IP, startTestServer, type TestServer } from '../helpers/server.ts';

/**
 * The risk engine over HTTP: client addresses come from X-Forwarded-For through the trusted
 * loopback proxy, every answer and every stored event carries a reason from the catalog, and the
 * reputation lists are re-read from disk without a restart.
 */
// All in or near London, where Rita signs in, so these cases are about networks, not travel.
const AWS = '35.176.0.1'; // Amazon AWS eu-west-2 (London): a cloud VM in the victim's own country
const TOR_CANDIDATE = '90.200.1.1'; // a Sky UK address we list as a Tor exit mid-test
const DENIED = '212.58.244.1'; // put on the deny list mid-test
const OFFICE_EGRESS = '81.2.70.1'; // allow-listed corporate egress

describe('risk over HTTP', () => {
  let t: TestServer;
  let dir: string;
  const pw = 'a-long-and-happy-password';
  const email = 'rita@example.test';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'risk-lists-'));
    writeFileSync(join(dir, 'tor.txt'), '# Tor exits\n198.51.100.7\n');
    writeFileSync(join(dir, 'deny.txt'), '');
    writeFileSync(join(dir, 'allow.txt'), `${OFFICE_EGRESS}/32 # head office\n`);
    t = await startTestServer({
      RISK_TOR_EXITS_FILE: join(dir, 'tor.txt'),
      RISK_DENY_CIDRS_FILE: join(dir, 'deny.txt'),
      RISK_ALLOW_CIDRS_FILE: join(dir, 'allow.txt'),
      RISK_LIST_CHECK_MS: '0',
    });
    await t.services.users.create({ email, password: pw, roles: ['PATHOLOGIST'] });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The risk part of a login answer: on the flow itself, or inside a problem answer's flow. */
  const riskOf = (body: { risk?: { level: string; reasons: string[] }; flow?: { risk?: { level: string; reasons: string[] } } }) => {
    const r = body.risk ?? body.flow?.risk;
    if (!r) throw new Error(`no risk in ${JSON.stringify(body)}`);
    return r;
  };

  const client = (ip: string, dev = device('rita'), ua = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15') =>
    new Client(t.url, { 'x-forwarded-for': ip, 'x-device-id': dev, 'user-agent': ua });

  it('says why on every answer: NEW_DEVICE first, then KNOWN_DEVICE and KNOWN_NETWORK', async () => {
    const home = client(IP.london);
    const first = await home.passwordLogin(email, pw);
    expect(first.body).toMatchObject({ step: 'done', risk: { level: 'low', reasons: ['NEW_DEVICE'] } });
    const again = await home.passwordLogin(email, pw);
    expect(again.body).toMatchObject({ step: 'done', risk: { level: 'low', reasons: ['KNOWN_DEVICE', 'KNOWN_NETWORK'] } });
  });

  it('takes the address from X-Forwarded-For and classifies its network: a new device on a cloud VM is stepped up', async () => {
    const bot = client(AWS, device('bot'), 'python-requests/2.32');
    const r = await bot.passwordLogin(email, pw);
    // Rita has no second factor, so a step-up ends in a refusal; the problem answer still says why.
    expect(r.status).toBe(403);
    expect(r.body).toMatchObject({ code: 'LOGIN_DENIED', flow: { risk: { level: 'medium' } } });
    expect(riskOf(r.body).reasons).toEqual(expect.arrayContaining(['HOSTING_NETWORK', 'NEW_DEVICE_NEW_NETWORK', 'NEW_DEVICE']));
    expect(JSON.stringify(r.body)).not.toContain(AWS);
    const { rows } = await t.db.query<{ ip: string; net_prefix: string; net_key: string; asn: number; net_type: string; ua_family: string; device_new: boolean }>(
      "SELECT ip, net_prefix, net_key, asn, net_type, ua_family, device_new FROM login_events WHERE flow_id = $1 AND outcome = 'denied'",
      [r.flowId],
    );
    expect(rows).toEqual([{ ip: AWS, net_prefix: '35.176.0.0/24', net_key: 'AS16509', asn: 16509, net_type: 'hosting', ua_family: 'Script/Other', device_new: true }]);
  });

  it('records a wrong password with its prefix, user-agent family and whether the device was new', async () => {
    const c = client('90.200.9.9', device('guess'));
    const r = await c.passwordLogin(email, 'not-the-password');
    expect(r.status).toBe(401);
    const { rows } = await t.db.query("SELECT net_prefix, ua_family, device_new FROM login_events WHERE flow_id = $1 AND outcome = 'failed'", [r.flowId]);
    expect(rows).toEqual([{ net_prefix: '90.200.9.0/24', ua_family: 'Safari/macOS', device_new: true }]);
  });

  it('re-reads the Tor exit list from disk without a restart', async () => {
    const before = await client(TOR_CANDIDATE, device('tor-1')).passwordLogin(email, pw);
    expect(riskOf(before.body).reasons).not.toContain('TOR_EXIT');
    writeFileSync(join(dir, 'tor.txt'), `# Tor exits\n198.51.100.7\n${TOR_CANDIDATE}\n`);
    const after = await client(TOR_CANDIDATE, device('tor-2')).passwordLogin(email, pw);
    expect(riskOf(after.body).reasons[0]).toBe('TOR_EXIT');
    expect(riskOf(after.body).level).toBe('high');
  });

  it('re-reads the deny list, and an allow-listed egress explains itself', async () => {
    writeFileSync(join(dir, 'deny.txt'), '212.58.244.0/24\n');
    const denied = await client(DENIED, device('deny')).passwordLogin(email, pw);
    expect(riskOf(denied.body).reasons).toContain('SUSPICIOUS_IP');
    const office = await client(OFFICE_EGRESS, device('office-laptop')).passwordLogin(email, pw);
    expect(office.body).toMatchObject({ step: 'done' });
    expect(riskOf(office.body).reasons).toEqual(['NEW_DEVICE', 'ALLOWED_NETWORK']);
  });

  it('stored a catalogued reason on every event', async () => {
    const { rows } = await t.db.query<{ outcome: string; reasons: string[] }>('SELECT outcome, reasons FROM login_events');
    expect(rows.length).toBeGreaterThan(6);
    for (const r of rows) {
      expect(r.reasons.length, r.outcome).toBeGreaterThan(0);
      if (r.outcome !== 'failed') for (const code of r.reasons) expect(REASONS, code).toHaveProperty(code);
    }
  });
});
