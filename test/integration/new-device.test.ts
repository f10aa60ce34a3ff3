import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, device, IP, startTestServer, type TestServer } from '../helpers/server.ts';
import { startSmtp } from '../helpers/peers.ts';

describe('new-device notice with a "this wasn\'t me" link', () => {
  let t: TestServer;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  const email = 'nora@example.test';
  const pw = 'nora-has-a-long-password';

  beforeAll(async () => {
    smtp = await startSmtp();
    t = await startTestServer({ SMTP_URL: smtp.url });
    await t.services.users.create({ email, password: pw, roles: ['PATHOLOGIST'] });
  });
  afterAll(async () => {
    await t?.close();
    await smtp?.close();
  });

  const waitForMail = async (n: number) => {
    for (let i = 0; i < 100 && smtp.messages.filter((m) => m.to.includes(email)).length < n; i++) await new Promise((r) => setTimeout(r, 50));
    return smtp.messages.filter((m) => m.to.includes(email));
  };

  it('mails nothing on the first login ever, once on a new device, and the link revokes that session', async () => {
    const home = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('nora-home') });
    expect((await home.passwordLogin(email, pw)).body.step).toBe('done');
    expect((await home.passwordLogin(email, pw)).body.step).toBe('done'); // known device: no notice
    await t.notifyIdle();
    expect(smtp.messages.filter((m) => m.to.includes(email))).toHaveLength(0);

    const intruder = new Client(t.url, { 'x-forwarded-for': IP.london, 'x-device-id': device('nora-intruder') });
    expect((await intruder.passwordLogin(email, pw)).body.step).toBe('done');
    const mails = await waitForMail(1);
    expect(mails).toHaveLength(1);
    const raw = mails[0].raw.replace(/=\r?\n/g, '');
    expect(raw).toMatch(/Subject: New sign-in/);
    const link = /(http:\/\/localhost:3000\/auth\/report\/[A-Za-z0-9_-]+)/.exec(raw)?.[1];
    expect(link).toBeDefined();
    const path = new URL(link!).pathname;

    // Following the link (as a mail scanner would) changes nothing.
    const page = await fetch(t.url + path);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<form method="post">');
    expect((await intruder.get('/auth/check')).body.authenticated).toBe(true);

    const report = await fetch(t.url + path, { method: 'POST', headers: { accept: 'application/json' } });
    expect(report.status).toBe(200);
    expect((await intruder.get('/auth/check')).body.authenticated).toBe(false);
    expect((await home.get('/auth/check')).body.authenticated).toBe(true); // only that session
    expect((await fetch(t.url + path, { method: 'POST' })).status).toBe(404); // single use

    const { rows } = await t.db.query<{ label: string; device_id: string }>(
      "SELECT l.label, l.source, l.strength, e.device_id, e.label AS current FROM login_event_labels l JOIN login_events e ON e.id = l.login_event_id",
    );
    expect(rows).toEqual([{ label: 'fraud', source: 'user_report', strength: 'strong', device_id: intruder.headers['x-device-id'], current: 'fraud' }]);
    const audit = await t.db.query("SELECT 1 FROM audit_events WHERE type = 'login.reported_fraudulent'");
    expect(audit.rowCount).toBe(1);
    await t.notifyIdle();
    expect(smtp.messages.filter((m) => m.to.includes(email))).toHaveLength(1); // once
  });
});
