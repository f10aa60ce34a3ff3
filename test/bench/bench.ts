/**
 * Threshold throughput benchmark (not a vitest test): `npm run bench`.
 *
 *   1. raw argon2id verify()/s with ARGON2_PARAMS at the server's PASSWORD_HASH_CONCURRENCY;
 *   2. complete password logins/s over HTTP (POST /auth/login + POST /auth/login/:id → done);
 *   3. POST /auth/authorize/s with a bearer access token, with latency p50/p99;
 *   4. complete TOTP step-ups/s of live sessions over HTTP (test/bench/stepup.ts);
 *   5. complete WebAuthn step-ups/s (emulated security key), both also as a ratio to (3);
 *   6. a plain Hono route (GET /ping → "ok", @hono/node-server on loopback): the baseline of (7)–(9);
 *   7. GET /auth/verify/s with a bearer token and X-Required-Permission, warm cache (sessions.ts);
 *  7b. the same with an API key (X-API-Key) instead of the bearer token, warm (api-keys.ts);
 *   8. refresh rotations/s, POST /auth/token (grant_type=refresh_token), one chain per client;
 *   9. the same refresh chains against oidc-provider 9 (in-memory adapter, oidc.ts), side by side.
 *
 * The server is the full test stack (test/helpers/server.ts): real socket, real Postgres
 * (private schema), real Redis/BullMQ and an in-process risk worker. Clients run in the same
 * process and use Node's global fetch (undici, keep-alive by default).
 *
 * Env: BENCH_SECONDS (default 5), BENCH_CLIENTS (default 8), BENCH_TOTP_USERS (default 400),
 * PASSWORD_HASH_CONCURRENCY (passed to the server; default from src/config/config.ts).
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { hash, verify } from '@node-rs/argon2';
import { ARGON2_PARAMS } from '../../src/authn/methods/password/password.ts';
import { startTestServer, Client, IP, device } from '../helpers/server.ts';
import { closedLoop, ratio, round, type RunResult } from './loop.ts';
import { startOidcProvider } from './oidc.ts';
import { countQueries, refreshChains, signInUsers, startPing, verifyOp, VERIFY_PERMISSION } from './sessions.ts';
import { prepareTotp, prepareWebAuthn, WEBAUTHN_ENV } from './stepup.ts';
import { apiKeyVerifyOp } from './api-keys.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const TOTP_USERS = Number(process.env.BENCH_TOTP_USERS ?? 400);
if (!(SECONDS > 0) || !Number.isInteger(CLIENTS) || CLIENTS < 1 || !Number.isInteger(TOTP_USERS) || TOTP_USERS < CLIENTS) {
  console.error('BENCH_SECONDS must be > 0, BENCH_CLIENTS a positive integer and BENCH_TOTP_USERS an integer ≥ BENCH_CLIENTS');
  process.exit(2);
}
const HTTP_CLIENT = 'global fetch (undici, keep-alive)';

async function main(): Promise<number> {
  const cpus = os.cpus();
  const loadBefore = round(os.loadavg()[0], 2);
  console.log('Threshold benchmark');
  console.log(`  machine : ${cpus.length} CPUs × ${cpus[0]?.model.trim() ?? 'unknown'}, ${round(os.totalmem() / 2 ** 30)} GiB RAM`);
  console.log(`  runtime : Node ${process.version} (${process.platform}/${process.arch}), UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}, load average ${loadBefore} (other load skews results)`);
  console.log(`  duration: ${SECONDS}s per phase, ${CLIENTS} HTTP clients, HTTP client: ${HTTP_CLIENT}`);

  // The login phase starts hundreds of flows a minute from one IP: lift the per-IP flow-start cap
  // (its Redis check still runs on every login). Other limits only count failures.
  const env: Record<string, string> = { ...WEBAUTHN_ENV, RATE_LIMIT_FLOW_STARTS_PER_MINUTE: '1000000' };
  if (process.env.PASSWORD_HASH_CONCURRENCY) env.PASSWORD_HASH_CONCURRENCY = process.env.PASSWORD_HASH_CONCURRENCY;
  const srv = await startTestServer(env);
  const hashConc = srv.config.PASSWORD_HASH_CONCURRENCY;
  const p = ARGON2_PARAMS;
  console.log(`  argon2id: m=${p.memoryCost} KiB t=${p.timeCost} p=${p.parallelism}, PASSWORD_HASH_CONCURRENCY=${hashConc}`);
  console.log(`  server  : ${srv.url} (Postgres private schema, Redis/BullMQ queue ${srv.queue}, in-process risk worker)\n`);

  try {
    // ---- 1. raw argon2id verify() rate, same concurrency as the server's semaphore ----
    const password = 'bench correct horse battery staple';
    const encoded = await hash(password, ARGON2_PARAMS);
    for (let i = 0; i < hashConc; i++) await verify(encoded, password); // warm-up
    const argon = await closedLoop(hashConc, SECONDS, async () => ((await verify(encoded, password)) ? null : 'verify returned false'));
    console.log(`[1/9] argon2 verify: ${argon.perSec}/s (${argon.ok} in ${argon.seconds}s, p50 ${argon.p50Ms} ms)`);

    // ---- 2. password logins over HTTP ----
    const email = `bench-${Date.now()}@example.test`;
    await srv.services.users.create({ email, password, roles: ['PATHOLOGIST'] });
    const headers = { 'x-device-id': device('bench'), 'x-forwarded-for': IP.london };
    const clients = Array.from({ length: CLIENTS }, () => new Client(srv.url, headers));
    const loginOnce = async (c: Client, returnTokens = false) => {
      c.cookies.clear(); // each iteration is a fresh, complete login
      const r = await c.passwordLogin(email, password, { returnTokens });
      const ok = r.status === 200 && r.body?.step === 'done';
      const why = ok ? null : `status ${r.status} step=${r.body?.step ?? '?'} ${r.body?.code ?? ''} ${JSON.stringify(r.body?.risk?.reasons ?? [])}`.trim();
      return { r, why };
    };
    // First login of the device (NEW_DEVICE, still low risk); also warms up the stack.
    const first = await loginOnce(clients[0]);
    if (first.why) throw new Error(`warm-up login failed: ${first.why}`);
    const logins = await closedLoop(CLIENTS, SECONDS, async (w) => (await loginOnce(clients[w])).why);
    const loginRatio = argon.perSec > 0 ? round(logins.perSec / argon.perSec, 3) : 0;
    console.log(`[2/9] logins: ${logins.perSec}/s (${logins.ok} ok, ${logins.failures} failed)`);

    // ---- 3. POST /auth/authorize with a bearer token ----
    const tok = await loginOnce(clients[0], true);
    const accessToken: string | undefined = tok.r.body?.tokens?.access_token;
    if (tok.why || !accessToken) throw new Error(`token login failed: ${tok.why ?? 'no access_token'}`);
    const authzHeaders = { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', ...headers };
    const authzBody = JSON.stringify({ permission: 'VIEW_CASES' });
    const authorize = async () => {
      const res = await fetch(`${srv.url}/auth/authorize`, { method: 'POST', headers: authzHeaders, body: authzBody });
      const body = (await res.json().catch(() => null)) as { allow?: boolean; code?: string } | null;
      return res.status === 200 && body?.allow === true ? null : `status ${res.status} ${body?.code ?? ''}`.trim();
    };
    for (let i = 0; i < 50; i++) if (await authorize()) break; // warm-up
    const authz = await closedLoop(CLIENTS, SECONDS, authorize);
    console.log(`[3/9] authorize: ${authz.perSec}/s (${authz.ok} ok, ${authz.failures} failed)`);

    // ---- 4. and 5. step-ups of live sessions (users, factors and sessions set up unmeasured) ----
    const warm = async (op: (w: number) => Promise<string | null>, what: string) => {
      for (let w = 0; w < CLIENTS; w++) {
        const fail = await op(w);
        if (fail) throw new Error(`warm-up ${what} failed: ${fail}`);
      }
    };
    let t0 = performance.now();
    const totp = await prepareTotp(srv, TOTP_USERS, CLIENTS);
    await warm(totp.op, 'TOTP step-up');
    totp.reset();
    const setupTotpS = round((performance.now() - t0) / 1000);
    const stTotp = await closedLoop(CLIENTS, SECONDS, totp.op);
    const totpRatio = authz.perSec > 0 ? round(stTotp.perSec / authz.perSec, 3) : 0;
    console.log(`[4/9] TOTP step-ups: ${stTotp.perSec}/s (${stTotp.ok} ok, ${stTotp.failures} failed; ${TOTP_USERS} users set up in ${setupTotpS}s)`);

    t0 = performance.now();
    const wa = await prepareWebAuthn(srv, CLIENTS, CLIENTS);
    await warm(wa.op, 'WebAuthn step-up');
    wa.reset();
    const setupWaS = round((performance.now() - t0) / 1000);
    const stWa = await closedLoop(CLIENTS, SECONDS, wa.op);
    const waRatio = authz.perSec > 0 ? round(stWa.perSec / authz.perSec, 3) : 0;
    const signMs = wa.sign.n ? round(wa.sign.ms / wa.sign.n, 2) : 0;
    const signShare = round(wa.sign.ms / 1000 / stWa.seconds, 2);
    console.log(`[5/9] WebAuthn step-ups: ${stWa.perSec}/s (${stWa.ok} ok, ${stWa.failures} failed; ${CLIENTS} users set up in ${setupWaS}s)`);

    // ---- 6. the baseline: a plain Hono route, same machine, same clients ----
    const ping = await startPing();
    await warm(ping.op, 'plain Hono /ping');
    const plain = await closedLoop(CLIENTS, SECONDS, ping.op);
    await ping.close();
    console.log(`[6/9] plain Hono GET /ping: ${plain.perSec}/s (${plain.ok} ok, ${plain.failures} failed)`);

    // ---- 7. GET /auth/verify with the cache warm (one signed-in user per client) ----
    const users = await signInUsers(srv, CLIENTS);
    const fwdAuth = verifyOp(srv, users);
    await warm(fwdAuth.op, '/auth/verify');
    const verifyProbe = await countQueries(srv.db, () => fwdAuth.op(0)); // a cache hit
    if (verifyProbe.result) throw new Error(`probe verify failed: ${verifyProbe.result}`);
    fwdAuth.reset();
    const fwd = await closedLoop(CLIENTS, SECONDS, fwdAuth.op);
    const cache = fwdAuth.cacheStats();
    const verifyRatio = ratio(fwd.perSec, plain.perSec);
    console.log(`[7/9] GET /auth/verify (cached): ${fwd.perSec}/s (${fwd.ok} ok, ${fwd.failures} failed; cache hit ratio ${cache.hitRatio})`);

    // ---- 7b. GET /auth/verify with an API key, warm (one key per client) ----
    const keyAuth = await apiKeyVerifyOp(srv, users);
    await warm(keyAuth.op, '/auth/verify with an API key');
    const keyProbe = await countQueries(srv.db, () => keyAuth.op(0)); // held verified in memory
    if (keyProbe.result) throw new Error(`probe API-key verify failed: ${keyProbe.result}`);
    const keyed = await closedLoop(CLIENTS, SECONDS, keyAuth.op);
    const keyRatio = ratio(keyed.perSec, plain.perSec);
    console.log(`[7b/9] GET /auth/verify (API key, warm): ${keyed.perSec}/s (${keyed.ok} ok, ${keyed.failures} failed)`);

    // ---- 8. refresh rotations, one token chain per client (the same sessions) ----
    const chains = refreshChains(`${srv.url}/auth/token`, users.map((u) => u.headers), users.map((u) => u.refreshToken));
    const refreshProbe = await countQueries(srv.db, () => chains.op(0));
    if (refreshProbe.result) throw new Error(`probe refresh failed: ${refreshProbe.result}`);
    await warm(chains.op, 'refresh');
    const refresh = await closedLoop(CLIENTS, SECONDS, chains.op);
    const refreshRatio = ratio(refresh.perSec, plain.perSec);
    console.log(`[8/9] refresh rotations: ${refresh.perSec}/s (${refresh.ok} ok, ${refresh.failures} failed)`);

    // ---- 9. the same refresh chains against oidc-provider (in-memory adapter), side by side ----
    const op = await startOidcProvider(CLIENTS);
    await warm(op.op, 'oidc-provider refresh');
    const oidc = await closedLoop(CLIENTS, SECONDS, op.op);
    await op.close();
    const oidcRatio = ratio(oidc.perSec, plain.perSec);
    const vsOidc = ratio(refresh.perSec, oidc.perSec);
    console.log(`[9/9] oidc-provider ${op.version} refresh rotations: ${oidc.perSec}/s (${oidc.ok} ok, ${oidc.failures} failed)\n`);

    // ---- report ----
    const row = (name: string, conc: number, r: RunResult) =>
      [name, String(conc), String(r.ok), String(r.failures), String(r.perSec), `${r.p50Ms} / ${r.p99Ms}`, `${Math.round(r.eventLoop * 100)}%`, `${Math.round(r.machineCpu * 100)}%`];
    const rows = [
      ['phase', 'concurrency', 'ok', 'failed', 'per second', 'latency p50 / p99 (ms)', 'event loop', 'machine CPU'],
      row('argon2id verify (raw)', hashConc, argon),
      row('password login (HTTP)', CLIENTS, logins),
      row('POST /auth/authorize', CLIENTS, authz),
      row('step-up TOTP (HTTP)', CLIENTS, stTotp),
      row('step-up WebAuthn (HTTP)', CLIENTS, stWa),
      row('plain Hono GET /ping (baseline)', CLIENTS, plain),
      row('GET /auth/verify (cached)', CLIENTS, fwd),
      row('GET /auth/verify (API key, warm)', CLIENTS, keyed),
      row('refresh rotation (POST /auth/token)', CLIENTS, refresh),
      row(`oidc-provider ${op.version} refresh rotation`, CLIENTS, oidc),
    ];
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    const line = (r: string[]) => '| ' + r.map((c, i) => (i >= 1 && i !== 5 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ') + ' |';
    console.log(line(rows[0]));
    console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
    for (const r of rows.slice(1)) console.log(line(r));
    console.log(`\nlogins/s ÷ raw argon2 verifies/s = ${loginRatio} (1.0 = the login path is fully hash-bound)`);
    console.log(`argon2 verifies/s per CPU = ${round(argon.perSec / cpus.length)}; authorize/s ÷ logins/s = ${logins.perSec > 0 ? round(authz.perSec / logins.perSec) : 0}`);
    console.log(`stepup_totp/s ÷ authorize/s = ${totpRatio}; stepup_webauthn/s ÷ authorize/s = ${waRatio}`);
    console.log(
      `step-up = ${totp.count.perStepUp} (TOTP) / ${wa.count.perStepUp} (WebAuthn) HTTP requests (POST /auth/stepup [→ choose method] → POST /auth/stepup/:id → done); ` +
        `HTTP requests/s: TOTP ${round(stTotp.perSec * totp.count.perStepUp)}, WebAuthn ${round(stWa.perSec * wa.count.perStepUp)}`,
    );
    console.log(
      `TOTP: ${TOTP_USERS} users, each TOTP step once per user; server clock moved to the next step ${totp.clockMoves()}× during the phase. ` +
        `WebAuthn: ${CLIENTS} users (one per client); emulator signing in this process ${signMs} ms/step-up = ${Math.round(signShare * 100)}% of the main thread (a real client signs on its own device)`,
    );
    console.log(`verify/s ÷ plain Hono /ping/s = ${verifyRatio}; refresh rotations/s ÷ plain Hono /ping/s = ${refreshRatio}; oidc-provider rotations/s ÷ plain Hono /ping/s = ${oidcRatio}`);
    console.log(`refresh rotations/s, Threshold ÷ oidc-provider ${op.version} = ${vsOidc} (same ${CLIENTS} chains, same fetch clients; not the same work, see below)`);
    console.log(
      `per rotation: Threshold = ${refreshProbe.statements} Postgres statements (BEGIN/COMMIT included) of which ${refreshProbe.transactions} transaction(s) ` +
        `(token + family + session lookups, roles; family row lock FOR UPDATE, strict rotate with reuse detection, child insert; idle-window touch) ` +
        `and one EdDSA-signed JWT access token, no Redis command (Redis serves the re-score when the client's network changes, and the deny-list on reuse); oidc-provider = no I/O (development in-memory LRU adapter), client_secret_post check, ` +
        `consumed-token reuse detection, ${op.probe.accessTokenFormat} access token kept in memory, one ${op.probe.idTokenAlg ?? 'no'} ID token (scope openid); replayed token → ${op.probe.replay}`,
    );
    console.log(
      `/auth/verify: ${VERIFY_PERMISSION} for ${CLIENTS} bearer tokens (one per client); cache ${cache.hits} hits / ${cache.misses} misses; ` +
        `${verifyProbe.statements} Postgres statements per cached verify (the revocation deny-list is one Redis GET per request)`,
    );
    console.log(
      `API-key authentication: verify with X-API-Key/s ÷ plain Hono /ping/s = ${keyRatio} (bearer verify: ${verifyRatio}); ` +
        `${keyProbe.statements} Postgres statements per warm API-key verify (the API-key version read and the key's rate-limit count go to Redis together; usage is counted in memory)`,
    );
    if (hashConc > cpus.length)
      console.log(`note: PASSWORD_HASH_CONCURRENCY (${hashConc}) > CPUs (${cpus.length}): extra hashes only queue for a core (throughput as at ${cpus.length}, higher latency)`);

    const phases = [
      ['argon2', argon], ['login', logins], ['authorize', authz], ['stepup_totp', stTotp], ['stepup_webauthn', stWa],
      ['plain_hono', plain], ['verify', fwd], ['api_key_verify', keyed], ['refresh', refresh], ['oidc_provider_refresh', oidc],
    ] as const;
    const failures = phases.reduce((n, [, r]) => n + r.failures, 0);
    if (failures) {
      console.log(`\nFAILURES: ${failures}`);
      for (const [phase, r] of phases)
        for (const [k, n] of Object.entries(r.failureKinds)) console.log(`  ${phase}: ${n} × ${k}`);
    }
    const strip = ({ failureKinds, ...r }: RunResult) => ({ ...r, ...(Object.keys(failureKinds).length ? { failureKinds } : {}) });
    const json = {
      machine: { cpus: cpus.length, model: cpus[0]?.model.trim() ?? 'unknown', node: process.version, platform: `${process.platform}/${process.arch}`, loadAvg1m: loadBefore },
      seconds: SECONDS,
      clients: CLIENTS,
      httpClient: HTTP_CLIENT,
      argon2: { params: { m: p.memoryCost, t: p.timeCost, p: p.parallelism }, concurrency: hashConc, ...strip(argon) },
      login: { ...strip(logins), ratioToArgon2: loginRatio },
      authorize: strip(authz),
      stepupTotp: { ...strip(stTotp), ratioToAuthorize: totpRatio, requestsPerStepUp: totp.count.perStepUp, users: TOTP_USERS, clockMoves: totp.clockMoves() },
      stepupWebauthn: {
        ...strip(stWa),
        ratioToAuthorize: waRatio,
        requestsPerStepUp: wa.count.perStepUp,
        users: CLIENTS,
        emulatorSignMsPerStepUp: signMs,
        emulatorSignMainThreadShare: signShare,
      },
      plainHono: { ...strip(plain), route: 'GET /ping' },
      verify: { ...strip(fwd), ratioToPlainHono: verifyRatio, permission: VERIFY_PERMISSION, tokens: CLIENTS, cache, postgresStatementsPerCachedVerify: verifyProbe.statements },
      apiKeyVerify: { ...strip(keyed), ratioToPlainHono: keyRatio, permission: VERIFY_PERMISSION, keys: CLIENTS, postgresStatementsPerWarmVerify: keyProbe.statements },
      refresh: {
        ...strip(refresh),
        ratioToPlainHono: refreshRatio,
        chains: CLIENTS,
        postgresStatementsPerRotation: refreshProbe.statements,
        postgresTransactionsPerRotation: refreshProbe.transactions,
      },
      oidcProviderRefresh: { ...strip(oidc), version: op.version, ratioToPlainHono: oidcRatio, thresholdRatio: vsOidc, chains: CLIENTS, adapter: 'memory', probe: op.probe },
      failures,
    };
    console.log(`BENCH_JSON ${JSON.stringify(json)}`);
    return failures ? 1 : 0;
  } finally {
    await srv.close();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error('bench failed:', e);
    process.exit(1);
  },
);
