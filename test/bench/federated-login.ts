/**
 * Federated-login benchmark (not a vitest test): `npx tsx test/bench/federated-login.ts`.
 *
 * Threshold (the full test stack: real socket, Postgres, Redis/BullMQ, in-process risk worker) and
 * a real `oidc-provider` (test/helpers/oidc-idp.ts) on loopback, in this process. Each bench client
 * is a browser with its own device, network and IdP account.
 *
 *   1. **callback → session** per second: `GET /auth/idp/:slug/callback` of logins prepared beforehand (not
 *      measured: POST /auth/login, the IdP's authorization endpoint with its session and grant, the
 *      redirect back). One callback = state lookup and single-use consume, the flow's browser
 *      binding, the code exchange at the IdP's token endpoint (client_secret_basic, PKCE), ID
 *      token validation (ES256, JWKS cached after the first), identity resolution with group →
 *      role re-evaluation, risk scoring through BullMQ, session, audit — answered as JSON.
 *      Fixed work (BENCH_FED_LOGINS prepared callbacks) run by BENCH_CLIENTS closed loops.
 *   2. **full round trips** per second for BENCH_SECONDS: start → IdP (already signed in there) → callback.
 *
 * The IdP's token endpoint runs in the same process, so its cost is inside both figures.
 * Env: BENCH_CLIENTS (default 8), BENCH_FED_LOGINS (default 400), BENCH_SECONDS (default 5).
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { startFederation, idpRoundTrip, finishJson } from '../helpers/federation.ts';
import { Browser } from '../helpers/oidc-idp.ts';
import { device } from '../helpers/server.ts';
import { closedLoop, cpuTimes, percentile, round } from './loop.ts';

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const LOGINS = Number(process.env.BENCH_FED_LOGINS ?? 400);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

async function main(): Promise<number> {
  const cpus = os.cpus();
  console.log('Threshold federated-login benchmark');
  console.log(`  machine : ${cpus.length} CPUs × ${cpus[0]?.model.trim() ?? 'unknown'}, Node ${process.version}, load average ${round(os.loadavg()[0], 2)} (other load skews results)`);
  const f = await startFederation({ env: { SESSION_MAX_PER_USER: '0', RATE_LIMIT_FLOW_STARTS_PER_MINUTE: '1000000' } });
  try {
    const p = await f.addProvider('acme');
    await f.admin.post(`/api/idps/${p.id}/mappings`, { group: 'pathologists', role: 'PATHOLOGIST' });
    // One person per client, each on a network of their own (IP velocity counts accounts per address).
    const browsers = Array.from({ length: CLIENTS }, (_, i) => {
      f.accounts[`bench${i}`] = { password: `bench-${i}-pw`, email: `bench${i}@acme.test`, emailVerified: true, groups: ['pathologists'] };
      return new Browser({ 'x-forwarded-for': `92.40.${10 + i}.1`, 'x-device-id': device(`fed-bench-${i}`) });
    });
    const login = (w: number) => idpRoundTrip(browsers[w], f.url, 'acme', `bench${w}`, `bench-${w}-pw`);
    // Warm-up (not measured): first login of each (JIT, IdP session and consent, discovery, JWKS).
    for (let w = 0; w < CLIENTS; w++) {
      const r = await finishJson(browsers[w], (await login(w)).callback);
      if (r.json?.step !== 'done') throw new Error(`warm-up login ${w}: ${r.status} ${r.text.slice(0, 300)}`);
    }

    // ---- 1. callback → session, fixed work ----
    const prepared: string[][] = browsers.map(() => []);
    await Promise.all(
      browsers.map(async (_, w) => {
        for (let i = w; i < LOGINS; i += CLIENTS) prepared[w].push((await login(w)).callback);
      }),
    );
    const lat: number[] = [];
    const failures: Record<string, number> = {};
    const cpu0 = cpuTimes();
    const elu0 = performance.eventLoopUtilization();
    const t0 = performance.now();
    await Promise.all(
      browsers.map(async (b, w) => {
        for (const cb of prepared[w]) {
          const s = performance.now();
          const r = await finishJson(b, cb);
          lat.push(performance.now() - s);
          if (r.status !== 200 || r.json?.step !== 'done') failures[`${r.status} ${r.json?.code ?? r.json?.step}`] = (failures[`${r.status} ${r.json?.code ?? r.json?.step}`] ?? 0) + 1;
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    const cpu1 = cpuTimes();
    lat.sort((a, b) => a - b);
    const failed = Object.values(failures).reduce((a, b) => a + b, 0);
    const callback = {
      perSec: round((lat.length - failed) / elapsed),
      logins: lat.length,
      failures,
      seconds: round(elapsed, 2),
      p50Ms: round(percentile(lat, 50), 2),
      p99Ms: round(percentile(lat, 99), 2),
      eventLoop: round(performance.eventLoopUtilization(elu0).utilization, 2),
      machineCpu: round((cpu1.busy - cpu0.busy) / Math.max(1, cpu1.total - cpu0.total), 2),
    };
    console.log(`  callback → session : ${callback.perSec}/s (${callback.logins} logins in ${callback.seconds}s, p50 ${callback.p50Ms} ms, p99 ${callback.p99Ms} ms, event loop ${callback.eventLoop}, machine CPU ${callback.machineCpu})`);

    // ---- 2. full round trips ----
    const full = await closedLoop(CLIENTS, SECONDS, async (w) => {
      const r = await finishJson(browsers[w], (await login(w)).callback);
      return r.status === 200 && r.json?.step === 'done' ? null : `${r.status} ${r.json?.code ?? r.json?.step}`;
    });
    console.log(`  full round trip    : ${full.perSec}/s (start → IdP → callback; p50 ${full.p50Ms} ms, p99 ${full.p99Ms} ms)`);
    console.log(`BENCH_JSON ${JSON.stringify({ federatedCallback: callback, federatedRoundTrip: full, loadAverage: round(os.loadavg()[0], 2) })}`);
    return failed + full.failures > 0 ? 1 : 0;
  } finally {
    await f.close();
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
