import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { registry } from '../../src/metrics/metrics.ts';

/**
 * deploy/prometheus/threshold-alerts.yml (issue 11 §6): Debian's promtool checks the rules and
 * runs their unit tests (threshold-alerts.test.yml: each alert fires on its anomaly, not before),
 * and every metric an expression names exists in the registry /metrics serves.
 */
const DIR = fileURLToPath(new URL('../../deploy/prometheus/', import.meta.url));
const RULES = `${DIR}threshold-alerts.yml`;
const TESTS = `${DIR}threshold-alerts.test.yml`;

function promtool(...args: string[]): string {
  try {
    return execFileSync('promtool', args, { cwd: DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (err.code === 'ENOENT') throw new Error('promtool is not installed: apt-get install prometheus');
    throw new Error(`promtool ${args.join(' ')} failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
  }
}

interface Rule {
  alert: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

describe('Prometheus alert rules', () => {
  const doc = parse(readFileSync(RULES, 'utf8')) as { groups: { name: string; rules: Rule[] }[] };
  const rules = doc.groups.flatMap((g) => g.rules);

  it('pass promtool check rules and promtool test rules', () => {
    expect(promtool('check', 'rules', RULES)).toMatch(/SUCCESS: 7 rules found/);
    expect(promtool('test', 'rules', TESTS)).toMatch(/SUCCESS/);
  });

  it('cover the anomalies the issue names, each with a severity and a summary, each unit-tested', () => {
    expect(rules.map((r) => r.alert).sort()).toEqual([
      'ThresholdDenySpike',
      'ThresholdLoginFailureRatioSpike',
      'ThresholdQueueBacklog',
      'ThresholdQueueNoWorkers',
      'ThresholdRefreshTokenReuse',
      'ThresholdRiskUnavailable',
      'ThresholdStepUpSpike',
    ]);
    const tests = parse(readFileSync(TESTS, 'utf8')) as { tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[] };
    const firing = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    const quiet = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length === 0).map((a) => a.alertname)));
    for (const r of rules) {
      expect(['warning', 'critical'], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(firing.has(r.alert), `${r.alert} is tested firing`).toBe(true);
    }
    // Every spike or threshold alert is also shown quiet on its steady state.
    for (const a of ['ThresholdLoginFailureRatioSpike', 'ThresholdStepUpSpike', 'ThresholdDenySpike', 'ThresholdRefreshTokenReuse', 'ThresholdQueueBacklog', 'ThresholdRiskUnavailable'])
      expect(quiet.has(a), a).toBe(true);
  });

  it('name only metrics that /metrics exposes', () => {
    const exposed = new Set(registry.getMetricsAsArray().map((m) => m.name));
    const histogramPart = /_(bucket|count|sum)$/;
    for (const r of rules) {
      const names = [...r.expr.matchAll(/\bthreshold_[a-z0-9_]+/g)].map((m) => m[0]);
      expect(names.length, r.alert).toBeGreaterThan(0);
      for (const n of names) {
        const base = exposed.has(n) ? n : n.replace(histogramPart, '');
        expect(exposed.has(base), `${r.alert}: ${n}`).toBe(true);
      }
    }
  });
});
