import { UnrecoverableError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import type { RiskAssessment } from '../../src/risk/policy.ts';
import type { RiskInput } from '../../src/risk/signals.ts';
import { assertJobId } from '../../src/jobs/jobs.ts';
import { QUEUES, RISK_JOB, riskJobId, RiskJobSchema } from '../../workers/queues.ts';
import { riskProcessor } from '../../workers/risk-score.worker.ts';

const valid = { identityId: '3f1c1a8e-8a9b-4c55-9d3e-0b1f6a2c7e11', deviceId: 'dev-1', ip: '81.2.69.142', at: 1_767_225_600_000 };

describe('risk queue contract', () => {
  it('names the queues and the job', () => {
    expect(QUEUES).toEqual({ risk: 'risk', notify: 'notify' });
    expect(RISK_JOB).toBe('risk.score');
  });

  it('accepts a RiskInput, with nulls for an unknown identity or device', () => {
    expect(RiskJobSchema.parse(valid)).toEqual(valid);
    expect(RiskJobSchema.parse({ ...valid, identityId: null, deviceId: null, ip: '2001:db8::1' }).identityId).toBeNull();
  });

  it('accepts the user agent and password outcome, optional so jobs from older API processes still validate', () => {
    const withUa = { ...valid, userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0', passwordCorrect: true };
    expect(RiskJobSchema.parse(withUa)).toEqual(withUa);
    expect(RiskJobSchema.parse({ ...valid, userAgent: null }).userAgent).toBeNull();
  });

  it.each([
    ['a non-uuid identity', { ...valid, identityId: 'alice' }],
    ['a non-IP', { ...valid, ip: '81.2.69' }],
    ['a hostname', { ...valid, ip: 'example.com' }],
    ['a device id over 200 chars', { ...valid, deviceId: 'd'.repeat(201) }],
    ['a fractional time', { ...valid, at: 1.5 }],
    ['a string time', { ...valid, at: '2026-01-01' }],
    ['an extra key', { ...valid, score: 0 }],
    ['a missing key', { identityId: null, deviceId: null, ip: '1.1.1.1' }],
    ['a user agent over 1000 chars', { ...valid, userAgent: 'u'.repeat(1001) }],
    ['a non-boolean password outcome', { ...valid, passwordCorrect: 'yes' }],
  ])('rejects %s', (_, p) => {
    expect(RiskJobSchema.safeParse(p).success).toBe(false);
  });

  it('derives deterministic, BullMQ-safe job ids', () => {
    expect(riskJobId('flow_abc-123', 0)).toBe(riskJobId('flow_abc-123', 0));
    expect(riskJobId('flow_abc-123', 0)).not.toBe(riskJobId('flow_abc-123', 1));
    expect(riskJobId('a', 1)).not.toBe(riskJobId('b', 1));
    for (const id of ['flow:with:colons', 'x/y z', 'ü'.repeat(300), 'f'.repeat(151), 'plain']) {
      const j = riskJobId(id, 2);
      expect(j).toMatch(/^[A-Za-z0-9_.-]+$/);
      expect(j).not.toContain(':');
      expect(assertJobId(j)).toBe(j);
    }
    expect(riskJobId('a:b', 0)).not.toBe(riskJobId('a_b', 0));
    expect(() => riskJobId('f', -1)).toThrow();
    expect(() => riskJobId('f', 1.5)).toThrow();
  });
});

describe('riskProcessor', () => {
  const seen: RiskInput[] = [];
  const scorer = {
    async score(input: RiskInput) {
      seen.push(input);
      return { score: 0, decision: 'allow' } as RiskAssessment;
    },
  };
  const run = riskProcessor(scorer);

  it('passes a valid payload to the scorer', async () => {
    await expect(run(RISK_JOB, valid, 'j1')).resolves.toMatchObject({ decision: 'allow' });
    expect(seen.at(-1)).toEqual(valid);
  });

  it('fails a bad payload or unknown job permanently, without scoring', async () => {
    const before = seen.length;
    await expect(run(RISK_JOB, { ...valid, ip: 'nope' }, 'j2')).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(run(RISK_JOB, null, 'j3')).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(run('notify.send', valid, 'j4')).rejects.toBeInstanceOf(UnrecoverableError);
    expect(seen.length).toBe(before);
  });
});
