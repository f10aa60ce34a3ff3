/**
 * Federation and machine-access benchmark (not a vitest test): `npx tsx test/bench/federation.ts`.
 *
 *   1. a plain Hono route (GET /ping), the baseline (sessions.ts startPing);
 *   2. RFC 8693 token exchanges/s at POST /auth/token, warm JWKS cache: subject tokens are JWT
 *      access tokens minted beforehand (not measured) by a real oidc-provider on loopback, one
 *      per exchange (each token is exchanged once), one linked user per client;
 *   3. POST /auth/authorize/s with a Kubernetes-shaped service-account token (warm JWKS and
 *      verified-token caches), as a ratio to (1);
 *   4. GET /auth/verify/s with the same token, X-Required-Permission and X-Required-Namespace;
 *   5. client_credentials grants/s (client_secret_basic), against Keycloak's anchor of 120/s per vCPU.
 *
 * The server is the full test stack (test/helpers/server.ts): real socket, Postgres, Redis/BullMQ
 * and the in-process risk worker (exchanges are risk-scored like logins). Env: BENCH_SECONDS
 * (default 5), BENCH_CLIENTS (default 8), BENCH_EXCHANGE_TOKENS (default 2500).
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { startTestServer, IP, device, signInAdmin } from '../helpers/server.ts';
import { startLoopbackOidc, startWorkloadIssuer } from '../helpers/issuers.ts';
import { closedLoop, ratio, round, type RunResult } from './loop.ts';
import { startPing } from './sessions.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const TOKENS = Number(process.env.BENCH_EXCHANGE_TOKENS ?? 2500);
const AUDIENCE = 'https://threshold.test/api';

async function main(): Promise<number> {
  const cpus = os.cpus();
  console.log('Threshold federation benchmark');
  console.log(`  machine : ${cpus.length} CPUs × ${cpus[0]?.model.trim() ?? 'unknown'}, Node ${process.version}, load average ${round(os.loadavg()[0], 2)} (other load skews results)`);
  console.log(`  duration: ${SECONDS}s per phase, ${CLIENTS} HTTP clients (global fetch, keep-alive)`);
  // Exchanges are logins of CLIENTS users many times a second: no per-user session cap eviction in the way.
  const srv = await startTestServer({ SESSION_MAX_PER_USER: '0' });
  const op = await startLoopbackOidc({ clients: Array.from({ length: CLIENTS }, (_, i) => `bench-app-${i}`), accessTokenTtl: 3600 });
  const k8s = await startWorkloadIssuer();
  const headers = Array.from({ length: CLIENTS }, (_, i) => ({ 'x-forwarded-for': IP.london, 'x-device-id': device(`fed-${i}`) }));
  try {
    const admin = await signInAdmin(srv);
    const reg = async (body: Record<string, unknown>) => {
      const r = await admin.post('/api/trusted-issuers', body);
      if (r.status !== 201) throw new Error(`issuer registration: ${r.status} ${JSON.stringify(r.body)}`);
    };
    await reg({ issuer: op.issuer, jwksUri: op.jwksUri, audiences: [AUDIENCE], purposes: 'token_exchange', algorithms: ['ES256'] });
    await reg({ issuer: k8s.issuer, discoveryUrl: k8s.discoveryUrl, audiences: ['threshold'], purposes: 'workload', algorithms: ['RS256'], subjectMappings: [{ subject: 'system:serviceaccount:payments:*', roles: ['TECHNICIAN'] }] });
    for (let i = 0; i < CLIENTS; i++) {
      const u = await srv.services.users.create({ email: `fed-bench-${i}@example.test`, roles: ['PATHOLOGIST'] });
      await srv.db.query("INSERT INTO external_identities (id, identity_id, issuer, subject, auth_protocol, created_at) VALUES ($1, $2, $3, $4, 'oidc', now())", [randomUUID(), u.id, op.issuer, `bench-app-${i}`]);
    }
    const warm = async (o: (w: number) => Promise<string | null>, what: string) => {
      for (let w = 0; w < CLIENTS; w++) {
        const fail = await o(w);
        if (fail) throw new Error(`warm-up ${what} failed: ${fail}`);
      }
    };

    // ---- 1. baseline ----
    const ping = await startPing();
    await warm(ping.op, '/ping');
    const plain = await closedLoop(CLIENTS, SECONDS, ping.op);
    await ping.close();
    console.log(`[1/5] plain Hono GET /ping: ${plain.perSec}/s`);

    // ---- 2. token exchanges (tokens minted first, unmeasured) ----
    const perClient = Math.ceil(TOKENS / CLIENTS);
    const t0 = Date.now();
    const pools: string[][] = await Promise.all(
      Array.from({ length: CLIENTS }, async (_, w) => {
        const out: string[] = [];
        for (let i = 0; i < perClient; i++) out.push(await op.token(`bench-app-${w}`, AUDIENCE));
        return out;
      }),
    );
    console.log(`      minted ${perClient * CLIENTS} subject tokens at oidc-provider in ${round((Date.now() - t0) / 1000)}s`);
    const exchangeOnce = async (w: number) => {
      const token = pools[w].pop();
      if (!token) return 'out of subject tokens (raise BENCH_EXCHANGE_TOKENS)';
      const res = await fetch(`${srv.url}/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers[w] },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: token, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' }),
      });
      const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      return res.status === 200 && body.access_token ? null : `status ${res.status} ${body.error ?? ''} ${body.error_description ?? ''}`.trim();
    };
    await warm(exchangeOnce, 'token exchange'); // the JWKS is fetched here, once
    const jwksFetchesBefore = srv.services.trusted.jwks.stats.fetches;
    const exch = await closedLoop(CLIENTS, SECONDS, exchangeOnce);
    const jwksFetchesDuring = srv.services.trusted.jwks.stats.fetches - jwksFetchesBefore;
    console.log(`[2/5] token exchanges: ${exch.perSec}/s (${exch.ok} ok, ${exch.failures} failed; JWKS fetches during the phase: ${jwksFetchesDuring})`);

    // ---- 3. and 4. service-account tokens ----
    const saTokens = await Promise.all(Array.from({ length: CLIENTS }, (_, w) => k8s.sign({ namespace: 'payments', name: `svc-${w}`, audience: 'threshold' })));
    const authzBody = JSON.stringify({ permission: 'VIEW_CASES', namespace: 'payments' });
    const saAuthorize = async (w: number) => {
      const res = await fetch(`${srv.url}/auth/authorize`, { method: 'POST', headers: { authorization: `Bearer ${saTokens[w]}`, 'content-type': 'application/json' }, body: authzBody });
      const body = (await res.json().catch(() => null)) as { allow?: boolean; code?: string } | null;
      return res.status === 200 && body?.allow === true ? null : `status ${res.status} ${body?.code ?? ''}`.trim();
    };
    await warm(saAuthorize, 'service-account authorize');
    const wstats0 = { ...srv.services.trusted.workloads.stats };
    const saAuthz = await closedLoop(CLIENTS, SECONDS, saAuthorize);
    const saVerify = async (w: number) => {
      const res = await fetch(`${srv.url}/auth/verify`, { headers: { authorization: `Bearer ${saTokens[w]}`, 'x-required-permission': 'VIEW_CASES', 'x-required-namespace': 'payments' } });
      await res.arrayBuffer();
      return res.status === 200 ? null : `status ${res.status}`;
    };
    await warm(saVerify, 'service-account verify');
    const saFwd = await closedLoop(CLIENTS, SECONDS, saVerify);
    const wstats = { hits: srv.services.trusted.workloads.stats.hits - wstats0.hits, misses: srv.services.trusted.workloads.stats.misses - wstats0.misses };
    console.log(`[3/5] POST /auth/authorize (service-account token): ${saAuthz.perSec}/s`);
    console.log(`[4/5] GET /auth/verify (service-account token): ${saFwd.perSec}/s (verified-token cache ${wstats.hits} hits / ${wstats.misses} misses)`);

    // ---- 5. client_credentials ----
    const made = await admin.post('/api/machine-clients', { clientId: 'bench-machine', roles: ['TECHNICIAN'], scopes: ['cases:read'] });
    if (made.status !== 201) throw new Error(`machine client: ${made.status}`);
    const basic = `Basic ${Buffer.from(`bench-machine:${made.body.clientSecret}`).toString('base64')}`;
    const grant = async () => {
      const res = await fetch(`${srv.url}/auth/token`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
      const body = (await res.json()) as { access_token?: string; error?: string };
      return res.status === 200 && body.access_token ? null : `status ${res.status} ${body.error ?? ''}`;
    };
    await warm(grant, 'client_credentials');
    const cc = await closedLoop(CLIENTS, SECONDS, grant);
    console.log(`[5/5] client_credentials grants: ${cc.perSec}/s\n`);

    const row = (name: string, r: RunResult) => `| ${name.padEnd(52)} | ${String(r.ok).padStart(6)} | ${String(r.failures).padStart(6)} | ${String(r.perSec).padStart(8)} | ${`${r.p50Ms} / ${r.p99Ms}`.padStart(14)} | ${`${Math.round(r.eventLoop * 100)}%`.padStart(5)} | ${`${Math.round(r.machineCpu * 100)}%`.padStart(5)} |`;
    console.log(`| ${'phase'.padEnd(52)} | ${'ok'.padStart(6)} | ${'failed'.padStart(6)} | ${'per s'.padStart(8)} | ${'p50 / p99 ms'.padStart(14)} | ${'loop'.padStart(5)} | ${'CPU'.padStart(5)} |`);
    console.log(row('plain Hono GET /ping (baseline)', plain));
    console.log(row('token exchange (POST /auth/token, warm JWKS)', exch));
    console.log(row('POST /auth/authorize, service-account token', saAuthz));
    console.log(row('GET /auth/verify, service-account token', saFwd));
    console.log(row('client_credentials (POST /auth/token)', cc));
    const json = {
      machine: { cpus: cpus.length, node: process.version, loadAvg1m: round(os.loadavg()[0], 2) },
      seconds: SECONDS,
      clients: CLIENTS,
      plainHono: plain.perSec,
      tokenExchange: { perSec: exch.perSec, p50Ms: exch.p50Ms, p99Ms: exch.p99Ms, failures: exch.failures, ratioToPlainHono: ratio(exch.perSec, plain.perSec), jwksFetchesDuringPhase: jwksFetchesDuring },
      serviceAccountAuthorize: { perSec: saAuthz.perSec, p50Ms: saAuthz.p50Ms, failures: saAuthz.failures, ratioToPlainHono: ratio(saAuthz.perSec, plain.perSec) },
      serviceAccountVerify: { perSec: saFwd.perSec, p50Ms: saFwd.p50Ms, failures: saFwd.failures, ratioToPlainHono: ratio(saFwd.perSec, plain.perSec), cache: wstats },
      clientCredentials: { perSec: cc.perSec, p50Ms: cc.p50Ms, failures: cc.failures, perCpu: round(cc.perSec / cpus.length), keycloakAnchorPerVcpu: 120, ratioToPlainHono: ratio(cc.perSec, plain.perSec) },
    };
    console.log(`\nservice-account authorize/s ÷ plain Hono /ping/s = ${json.serviceAccountAuthorize.ratioToPlainHono}; verify ÷ plain = ${json.serviceAccountVerify.ratioToPlainHono}`);
    console.log(`client_credentials grants/s per CPU = ${json.clientCredentials.perCpu} (Keycloak's anchor: 120 per vCPU)`);
    console.log(`BENCH_JSON ${JSON.stringify(json)}`);
    const failures = exch.failures + saAuthz.failures + saFwd.failures + cc.failures + plain.failures;
    if (failures) for (const [n, r] of [['exchange', exch], ['sa-authorize', saAuthz], ['sa-verify', saFwd], ['client_credentials', cc]] as const) for (const [k, v] of Object.entries(r.failureKinds)) console.log(`  ${n}: ${v} × ${k}`);
    return failures ? 1 : 0;
  } finally {
    await srv.close();
    await op.close();
    await k8s.close();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error('bench failed:', e);
    process.exit(1);
  },
);
