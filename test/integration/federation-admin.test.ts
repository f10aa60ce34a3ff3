import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, device, IP, signIn, signInAdmin, startTestServer, type TestServer } from '../helpers/server.ts';
import { applyIdpConfigFile } from '../../src/authn/federation/config-file.ts';

/**
 * Issue 10: identity providers administered over /api/idps (ADMIN), declared in IDP_CONFIG_FILE,
 * and listed publicly by GET /auth/providers — the client secret sealed at rest and never answered.
 */
describe('identity provider administration', () => {
  let t: TestServer;
  let admin: Client;
  const SECRET = 'the-client-secret-nobody-may-read';
  const body = (slug: string, extra: Record<string, unknown> = {}) => ({
    slug,
    type: 'oidc',
    displayName: `${slug} SSO`,
    settings: { issuer: 'https://idp.example.com', clientId: `${slug}-client`, clientSecret: SECRET },
    ...extra,
  });

  beforeAll(async () => {
    t = await startTestServer();
    admin = await signInAdmin(t);
  });
  afterAll(async () => t?.close());

  it('creates a provider, seals its secret and never answers it', async () => {
    const r = await admin.post('/api/idps', body('okta', { allowedEmailDomains: ['Example.COM'] }));
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      slug: 'okta',
      type: 'oidc',
      enabled: true,
      jitProvisioning: false,
      linkByVerifiedEmail: false,
      trustUpstreamMfa: false,
      allowedEmailDomains: ['example.com'],
      settings: { issuer: 'https://idp.example.com', clientId: 'okta-client', clientSecretSet: true, scopes: ['openid', 'email', 'profile'], useUserinfo: false },
    });
    expect(JSON.stringify(r.body)).not.toContain(SECRET);
    expect(JSON.stringify(r.body)).not.toContain('Sealed');
    const row = await t.db.query<{ settings: { clientSecretSealed: string } }>('SELECT settings FROM identity_providers WHERE slug = $1', ['okta']);
    expect(row.rows[0].settings.clientSecretSealed).toMatch(/^v1\./);
    expect(JSON.stringify(row.rows[0])).not.toContain(SECRET);
    for (const path of ['/api/idps', `/api/idps/${r.body.id}`]) expect(JSON.stringify((await admin.get(path)).body)).not.toContain(SECRET);
    const audit = await t.db.query("SELECT reason, data FROM audit_events WHERE type = 'idp.created'");
    expect(audit.rows).toEqual([{ reason: 'ADMIN', data: { slug: 'okta', type: 'oidc' } }]);
  });

  it('keeps the sealed secret across an update that does not send one, and replaces it when one is sent', async () => {
    const id = (await admin.get('/api/idps')).body.find((p: { slug: string }) => p.slug === 'okta').id;
    const sealed = async () => (await t.db.query<{ s: string }>("SELECT settings->>'clientSecretSealed' AS s FROM identity_providers WHERE id = $1", [id])).rows[0].s;
    const before = await sealed();
    const r = await admin.req('PATCH', `/api/idps/${id}`, { displayName: 'Okta', settings: { scopes: ['openid', 'email'] } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ displayName: 'Okta', settings: { scopes: ['openid', 'email'], clientSecretSet: true, clientId: 'okta-client' } });
    expect(await sealed()).toBe(before);
    await admin.req('PATCH', `/api/idps/${id}`, { settings: { clientSecret: 'rotated-secret' } });
    expect(await sealed()).not.toBe(before);
    const updated = await t.db.query("SELECT data FROM audit_events WHERE type = 'idp.updated' ORDER BY seq");
    expect(JSON.stringify(updated.rows)).not.toContain('rotated-secret');
  });

  it('refuses bad settings: plain http to a remote issuer, no openid scope, an unknown member, a duplicate slug', async () => {
    const http = await admin.post('/api/idps', body('h', { settings: { issuer: 'http://idp.example.com', clientId: 'c', clientSecret: 's' } }));
    expect(http.status).toBe(400);
    expect(http.body.detail).toMatch(/settings\.issuer/);
    const scopes = await admin.post('/api/idps', body('s', { settings: { issuer: 'https://idp.example.com', clientId: 'c', clientSecret: 's', scopes: ['email'] } }));
    expect(scopes.body.code).toBe('VALIDATION_FAILED');
    const extra = await admin.post('/api/idps', body('e', { settings: { issuer: 'https://idp.example.com', clientId: 'c', clientSecret: 's', bogus: 1 } }));
    expect(extra.body.code).toBe('VALIDATION_FAILED');
    const noSecret = await admin.post('/api/idps', body('n', { settings: { issuer: 'https://idp.example.com', clientId: 'c' } }));
    expect(noSecret.body.detail).toMatch(/clientSecret/);
    expect((await admin.post('/api/idps', body('okta'))).status).toBe(409);
  });

  it('manages group → role mappings', async () => {
    const id = (await admin.get('/api/idps')).body[0].id;
    const m = await admin.post(`/api/idps/${id}/mappings`, { group: 'Pathology', role: 'PATHOLOGIST' });
    expect(m.status).toBe(201);
    expect(m.body).toMatchObject({ group: 'Pathology', role: 'PATHOLOGIST', active: true });
    expect((await admin.post(`/api/idps/${id}/mappings`, { group: 'Pathology', role: 'PATHOLOGIST' })).status).toBe(409);
    expect((await admin.post(`/api/idps/${id}/mappings`, { group: 'X', role: 'NO_SUCH_ROLE' })).body.code).toBe('VALIDATION_FAILED');
    const off = await admin.req('PATCH', `/api/idps/${id}/mappings/${m.body.id}`, { active: false });
    expect(off.body.active).toBe(false);
    expect((await admin.get(`/api/idps/${id}/mappings`)).body).toHaveLength(1);
    expect((await admin.req('DELETE', `/api/idps/${id}/mappings/${m.body.id}`)).status).toBe(204);
    expect((await admin.req('DELETE', `/api/idps/${id}/mappings/${m.body.id}`)).status).toBe(404);
  });

  it('lists enabled providers publicly with nothing secret', async () => {
    await admin.post('/api/idps', body('hidden', { enabled: false }));
    const r = await new Client(t.url).get('/auth/providers');
    expect(r.status).toBe(200);
    expect(r.body).toEqual([{ slug: 'okta', name: 'Okta', type: 'oidc', loginUrl: `${t.config.PUBLIC_URL}/auth/idp/okta/login` }]);
  });

  it('refuses everything to a non-administrator', async () => {
    const created = await admin.post('/api/users', { email: 'tech@example.test', password: 'quiet-lantern-harbour-9', roles: ['TECHNICIAN'] });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { c } = await signIn(t.url, 'tech@example.test', 'quiet-lantern-harbour-9', { device: device('tech'), ip: IP.london });
    for (const [m, p] of [['GET', '/api/idps'], ['POST', '/api/idps'], ['GET', '/api/organisations']] as const) {
      const r = await c.req(m, p, m === 'POST' ? body('x') : undefined);
      expect(r.status).toBe(403);
      expect(r.body.code).toBe('PERMISSION_DENIED');
    }
    expect((await new Client(t.url).get('/api/idps')).status).toBe(401);
  });

  it('manages organisations; a domain belongs to one organisation only', async () => {
    const o = await admin.post('/api/organisations', { slug: 'hospital', name: 'Hospital', provider: 'okta', domains: ['Hospital.org'] });
    expect(o.status).toBe(201);
    expect(o.body).toMatchObject({ slug: 'hospital', provider: 'okta', domains: ['hospital.org'] });
    const clash = await admin.post('/api/organisations', { slug: 'clinic', name: 'Clinic', domains: ['hospital.org'] });
    expect(clash.status).toBe(409);
    expect((await admin.post('/api/organisations', { slug: 'x', name: 'X', provider: 'nope' })).body.code).toBe('VALIDATION_FAILED');
    expect((await admin.req('DELETE', `/api/organisations/${o.body.id}`)).status).toBe(204);
  });

  it('upserts providers, mappings and organisations from IDP_CONFIG_FILE, the secret by environment variable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'idp-config-'));
    const file = join(dir, 'idps.json');
    const doc = (group: string) => ({
      providers: [
        {
          slug: 'entra',
          type: 'oidc',
          displayName: 'Entra ID',
          jitProvisioning: true,
          settings: { issuer: 'https://login.example.net/tenant/v2.0', clientId: 'entra-client', clientSecretEnv: 'ENTRA_SECRET' },
          mappings: [{ group, role: 'TECHNICIAN' }],
        },
      ],
      organisations: [{ slug: 'lab', name: 'Lab', provider: 'entra', domains: ['lab.example'] }],
    });
    const deps = { db: t.db, audit: t.services.audit, providers: t.services.federation.providers, organisations: t.services.federation.organisations, env: { ENTRA_SECRET: 'entra-secret-value' } };
    try {
      writeFileSync(file, JSON.stringify(doc('lab-techs')));
      expect(await applyIdpConfigFile(file, deps)).toEqual({ providers: 1, organisations: 1 });
      writeFileSync(file, JSON.stringify(doc('technicians')));
      await applyIdpConfigFile(file, deps);
      const p = (await admin.get('/api/idps')).body.find((x: { slug: string }) => x.slug === 'entra');
      expect(p).toMatchObject({ managedBy: 'config', jitProvisioning: true, settings: { clientSecretSet: true } });
      expect((await admin.get(`/api/idps/${p.id}/mappings`)).body.map((m: { group: string }) => m.group)).toEqual(['technicians']);
      expect(await t.services.federation.organisations.providerFor('someone@LAB.example')).toBe('entra');
      const raw = await t.db.query("SELECT settings::text AS s FROM identity_providers WHERE slug = 'entra'");
      expect(raw.rows[0].s).not.toContain('entra-secret-value');
      await expect(applyIdpConfigFile(file, { ...deps, env: {} })).rejects.toThrow(/ENTRA_SECRET/);
      writeFileSync(file, JSON.stringify({ providers: [{ slug: 'Bad Slug' }] }));
      await expect(applyIdpConfigFile(file, deps)).rejects.toThrow(/IDP_CONFIG_FILE/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
