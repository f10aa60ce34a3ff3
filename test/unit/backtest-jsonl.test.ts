import { describe, expect, it } from 'vitest';
import { newReadStats, readAttempts, type Attempt } from '../../src/backtest/jsonl.ts';
import { userAgentFromFamily, UA_FAMILY_PARTS } from '../../src/backtest/ua-family.ts';
import { userAgentFamily } from '../../src/risk/user-agent.ts';

async function readAll(text: string) {
  const stats = newReadStats();
  const out: Attempt[] = [];
  for await (const a of readAttempts({ text }, stats)) out.push(a);
  return { out, stats };
}

const ok = (o: Record<string, unknown> = {}) =>
  JSON.stringify({ ts: '2026-09-01T10:00:00Z', user: 'a@x', ip: '81.2.69.142', deviceId: 'd1', userAgent: 'UA', passwordCorrect: true, ...o });

describe('JSONL reader', () => {
  it('reports each malformed line with its number, skips it and goes on', async () => {
    const text = [
      ok(),
      '{"ts": "2026-09-01T10:00:01Z", "user": "a@x"', // truncated JSON
      ok({ ip: 'not-an-ip' }),
      ok({ passwordCorrect: 'yes' }),
      '',
      ok({ ts: 'yesterday' }),
      '[1,2,3]',
      ok({ label: 'fraud' }),
      ok({ user: 'b@x' }),
    ].join('\n');
    const { out, stats } = await readAll(text);
    expect(out.map((a) => [a.line, a.user])).toEqual([[1, 'a@x'], [9, 'b@x']]);
    expect(stats.lines).toBe(9);
    expect(stats.records).toBe(2);
    expect(stats.blank).toBe(1);
    expect(stats.malformed).toBe(6);
    expect(stats.malformedSamples.map((m) => m.line)).toEqual([2, 3, 4, 6, 7, 8]);
    expect(stats.malformedSamples[0].error).toMatch(/invalid JSON/);
    expect(stats.malformedSamples[1].error).toMatch(/^ip:/);
    expect(stats.malformedSamples[2].error).toMatch(/^passwordCorrect:/);
    expect(stats.malformedSamples[3].error).toMatch(/^ts:/);
    expect(stats.malformedSamples[5].error).toMatch(/^label:/);
  });

  it('ignores unknown fields, accepts nulls, a BOM and CRLF line ends', async () => {
    const text = '\ufeff' + ok({ extra: { nested: true }, deviceId: null, userAgent: null, label: 'attack', kind: 'tor' }) + '\r\n' + ok({ ip: '2001:db8::1' }) + '\r\n';
    const { out, stats } = await readAll(text);
    expect(stats.malformed).toBe(0);
    expect(out).toHaveLength(2);
    expect(out[0]).toMatchObject({ line: 1, deviceId: null, userAgent: null, label: 'attack', kind: 'tor', at: Date.parse('2026-09-01T10:00:00Z') });
    expect(out[0]).not.toHaveProperty('extra');
    expect(out[1].ip).toBe('2001:db8::1');
  });

  it('bounds what it keeps of a garbage file', async () => {
    const text = Array.from({ length: 500 }, () => 'garbage').join('\n');
    const { stats } = await readAll(text);
    expect(stats.malformed).toBe(500);
    expect(stats.malformedSamples).toHaveLength(100);
  });
});

describe('user-agent stand-ins for stored families', () => {
  it('round-trips every family the engine can store', () => {
    for (const b of UA_FAMILY_PARTS.browsers) {
      for (const o of UA_FAMILY_PARTS.systems) {
        const ua = userAgentFromFamily(`${b}/${o}`);
        expect(ua, `${b}/${o}`).not.toBeNull();
        expect(userAgentFamily(ua)).toBe(`${b}/${o}`);
      }
    }
    expect(userAgentFromFamily(null)).toBeNull();
    expect(userAgentFromFamily('Netscape/BeOS')).toBeNull();
  });
});
