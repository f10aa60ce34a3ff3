import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, signIn, signInAdmin, startTestServer, type TestServer } from '../helpers/server.ts';

/** /api/audit over HTTP (issue 11 §3): filters, cursor pages, JSONL export and the chain check. */
describe('/api/audit', () => {
  let t: TestServer;
  let admin: Client;
  let adminId: string;
  let eveId: string;
  const pw = 'a-long-enough-password';
  beforeAll(async () => {
    t = await startTestServer();
    admin = await signInAdmin(t);
    adminId = (await admin.get('/auth/me')).body.user.id;
    expect((await admin.post('/api/users', { email: 'ivo@example.test', password: pw, roles: ['TECHNICIAN'] })).status).toBe(201);
    eveId = (await admin.post('/api/users', { email: 'eve@example.test', password: pw, roles: [] })).body.id;
    for (let i = 0; i < 3; i++) await new Client(t.url, { 'x-device-id': 'dev-eve-0123456789' }).passwordLogin('eve@example.test', 'wrong-password-' + i);
  });
  afterAll(async () => t?.close());

  type Ev = { seq: number; type: string; actor: string | null; subject: string | null; outcome: string; at: string; data: any };
  const list = async (q: string): Promise<Ev[]> => {
    const r = await admin.get(`/api/audit${q}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.items;
  };

  it('needs VIEW_AUDIT_LOGS: 401 without a session, 403 for a technician', async () => {
    const ivo = (await signIn(t.url, 'ivo@example.test', pw)).c;
    for (const p of ['/api/audit', '/api/audit/export', '/api/audit/verify']) {
      expect((await new Client(t.url).get(p)).status, p).toBe(401);
      expect((await ivo.get(p)).body.code, p).toBe('PERMISSION_DENIED');
    }
  });

  it('filters by actor, subject, type (exact or noun.*), outcome and time', async () => {
    const byAdmin = await list(`?actor=${adminId}&limit=200`);
    expect(byAdmin.length).toBeGreaterThan(0);
    expect(byAdmin.every((e) => e.actor === adminId)).toBe(true);
    expect(byAdmin.map((e) => e.type)).toContain('user.created');
    const aboutEve = await list(`?subject=${eveId}&type=login.failed`);
    expect(aboutEve.map((e) => e.type)).toEqual(['login.failed', 'login.failed', 'login.failed']);
    const logins = await list('?type=login.*&limit=200');
    expect(new Set(logins.map((e) => e.type))).toEqual(new Set(['login.failed', 'login.succeeded']));
    const failures = await list('?outcome=failure&limit=200');
    expect(failures.length).toBeGreaterThanOrEqual(4); // three wrong passwords and the technician's refusals
    expect(failures.every((e) => e.outcome === 'failure' && /\.(failed|denied|refused)$/.test(e.type))).toBe(true);
    expect((await list('?outcome=success&limit=200')).some((e) => e.outcome === 'failure')).toBe(false);
    const all = await list('?limit=200');
    const mid = all[Math.floor(all.length / 2)].at;
    const after = await list(`?from=${encodeURIComponent(mid)}&limit=200`);
    const before = await list(`?to=${encodeURIComponent(mid)}&limit=200`);
    expect(after.every((e) => e.at >= mid) && before.every((e) => e.at < mid)).toBe(true);
    expect(after.length + before.length).toBe(all.length);
    for (const bad of ['?type=LOGIN', '?outcome=meh', '?from=yesterday', '?limit=500'])
      expect((await admin.get(`/api/audit${bad}`)).body.code, bad).toBe('VALIDATION_FAILED');
    expect((await admin.get('/api/audit?cursor=WyJ4Il0')).body.code).toBe('INVALID_CURSOR');
  });

  it('pages newest first by seq, each event once, while events are appended concurrently', async () => {
    const existing = (await list('?limit=200')).map((e) => e.seq);
    const seen: number[] = [];
    const walk = async () => {
      let cursor: string | null = null;
      do {
        const r: { body: any } = await admin.get(`/api/audit?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
        seen.push(...r.body.items.map((e: Ev) => e.seq));
        cursor = r.body.nextCursor;
      } while (cursor);
    };
    await Promise.all([walk(), ...Array.from({ length: 15 }, (_, i) => t.services.audit.append({ type: 'user.updated', actor: 'test', subject: `s${i}` }))]);
    expect(new Set(seen).size).toBe(seen.length);
    for (const s of existing) expect(seen).toContain(s);
    expect(seen.filter((s) => existing.includes(s))).toEqual(existing); // descending, as listed
  });

  it('exports JSONL in chain order, filtered and bounded, and audits the export', async () => {
    const res = await fetch(`${t.url}/api/audit/export?type=login.failed`, { headers: { cookie: [...admin.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = (await res.text()).trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((e) => e.type)).toEqual(['login.failed', 'login.failed', 'login.failed']);
    expect(lines.map((e) => e.seq)).toEqual([...lines.map((e) => e.seq)].sort((a, b) => a - b));
    expect(lines[0]).toHaveProperty('hash');

    const first = await admin.get('/api/audit/export?limit=2');
    const part = (first.body as string).trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(part).toHaveLength(3);
    expect(part[2]).toEqual({ truncated: true, nextAfterSeq: part[1].seq });
    const next = await admin.get(`/api/audit/export?limit=1&afterSeq=${part[2].nextAfterSeq}`);
    expect(JSON.parse((next.body as string).split('\n')[0]).seq).toBeGreaterThan(part[1].seq);
    const exported = await list('?type=audit.exported');
    expect(exported[exported.length - 1].data).toMatchObject({ filters: { type: 'login.failed' }, rows: 3 });
    expect((await admin.get('/api/audit/export?limit=100001')).body.code).toBe('VALIDATION_FAILED');
  });

  it('verify runs the chain check; a tampered row is reported', async () => {
    const ok = await admin.get('/api/audit/verify');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ok: true });
    expect(ok.body.checked).toBeGreaterThan(10);
    const seq = (await list(`?subject=${eveId}&type=login.failed`))[1].seq;
    await t.db.exec('ALTER TABLE audit_events DISABLE TRIGGER USER');
    try {
      await t.db.query(`UPDATE audit_events SET data = jsonb_set(data, '{ip}', '"198.51.100.1"') WHERE seq = $1`, [seq]);
    } finally {
      await t.db.exec('ALTER TABLE audit_events ENABLE TRIGGER USER');
    }
    const bad = await admin.get('/api/audit/verify');
    expect(bad.body).toMatchObject({ ok: false, brokenAt: seq, problem: expect.stringMatching(/hash mismatch/) });
  });
});
