import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.ts';
import type { Db } from '../../src/db/db.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPgliteDb } from '../../src/db/pglite.ts';
import { createIssuerRegistry, IssuerInputSchema } from '../../src/authn/trusted-issuers/registry.ts';
import { mapSubject } from '../../src/authn/trusted-issuers/workload.ts';

/** The issuer registry on PGlite (migration 0120 runs there too): the file wins, the API cannot change its rows. */
describe('trusted issuer registry', () => {
  let db: Db;
  const clock = new ManualClock(Date.parse('2026-11-30T09:00:00Z'));
  beforeAll(async () => {
    db = await createPgliteDb();
    await migrate(db);
  });
  afterAll(async () => {
    await db.close();
  });

  it('applies TRUSTED_ISSUERS_FILE; its rows are file-managed and replaced or removed only by the file', async () => {
    const reg = createIssuerRegistry({ db, clock });
    const dir = mkdtempSync(join(tmpdir(), 'issuers-'));
    const file = join(dir, 'issuers.json');
    const k8s = { issuer: 'https://kubernetes.default.svc', jwksUri: 'https://k8s.test/openid/v1/jwks', audiences: ['threshold'], purposes: 'workload', subjectMappings: [{ subject: 'system:serviceaccount:payments:*', roles: ['TECHNICIAN'] }] };
    const okta = { issuer: 'https://acme.okta.test', discoveryUrl: 'https://acme.okta.test/.well-known/openid-configuration', audiences: ['api://threshold'], purposes: 'token_exchange' };
    writeFileSync(file, JSON.stringify([k8s, okta]));
    expect(await reg.loadFile(file)).toBe(2);
    const byIss = await reg.byIssuer(k8s.issuer);
    expect(byIss).toMatchObject({ source: 'file', purposes: 'workload', algorithms: ['RS256', 'ES256', 'EdDSA'] });
    expect(await reg.upsert(IssuerInputSchema.parse({ ...okta, audiences: ['other'] }), 'api')).toBe('file_managed');
    expect(await reg.remove(byIss!.id)).toBe('file_managed');
    // An API-made issuer beside them survives the file's next application; okta leaves the file and goes.
    const api = await reg.upsert(IssuerInputSchema.parse({ issuer: 'https://api-made.test', jwksUri: 'https://api-made.test/jwks', audiences: ['x'], purposes: 'both' }), 'api');
    expect(api).toMatchObject({ created: true });
    writeFileSync(file, JSON.stringify([k8s]));
    await reg.loadFile(file);
    expect((await reg.list()).map((i) => `${i.issuer} ${i.source}`)).toEqual(['https://api-made.test api', 'https://kubernetes.default.svc file']);
  });

  it('refuses a file with a bad issuer, naming the problem (fail at boot, not at login)', async () => {
    const reg = createIssuerRegistry({ db, clock });
    const file = join(mkdtempSync(join(tmpdir(), 'issuers-')), 'bad.json');
    writeFileSync(file, JSON.stringify([{ issuer: 'https://x.test', jwksUri: 'https://x.test/jwks', audiences: ['a'], purposes: 'both', algorithms: ['HS256'] }]));
    await expect(reg.loadFile(file)).rejects.toThrow(/algorithms/);
    writeFileSync(file, JSON.stringify([{ issuer: 'https://x.test', audiences: ['a'], purposes: 'both' }]));
    await expect(reg.loadFile(file)).rejects.toThrow(/discoveryUrl or jwksUri/);
  });

  it('maps subjects: exact names and trailing-* prefixes, namespaces defaulting to the account\'s own', () => {
    const issuer = IssuerInputSchema.parse({
      issuer: 'https://k.test',
      jwksUri: 'https://k.test/jwks',
      audiences: ['a'],
      purposes: 'workload',
      subjectMappings: [
        { subject: 'system:serviceaccount:payments:*', roles: ['TECHNICIAN'] },
        { subject: 'system:serviceaccount:payments:api', roles: ['PATHOLOGIST'], namespaces: ['reports'] },
      ],
    });
    const full = { ...issuer, id: 'x', source: 'api' as const, createdAt: '', updatedAt: '' };
    expect(mapSubject(full, 'system:serviceaccount:payments:api', 'payments')).toEqual({ roles: ['PATHOLOGIST', 'TECHNICIAN'], namespaces: ['payments', 'reports'] });
    expect(mapSubject(full, 'system:serviceaccount:payments:worker', 'payments')).toEqual({ roles: ['TECHNICIAN'], namespaces: ['payments'] });
    expect(mapSubject(full, 'system:serviceaccount:paymentsx:api', 'paymentsx')).toBeNull();
    expect(mapSubject(full, 'system:serviceaccount:billing:api', 'billing')).toBeNull();
  });
});
