import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, canonicalJson, hashRow } from '../../src/audit/audit.ts';
import type { ChainRow } from '../../src/audit/audit.ts';

const row: ChainRow = {
  prev_hash: GENESIS_HASH,
  id: '7d1c8f8e-5b8a-4f59-9a3f-0d2c1b1e4a10',
  at: '2026-01-01T00:00:00.123Z',
  type: 'login.succeeded',
  actor: 'u1',
  subject: null,
  reason: 'PASSWORD_OK',
  data: { b: 1, a: { d: [1, { z: 1, y: 2 }], c: 'x' } },
};

describe('canonicalJson', () => {
  it('sorts object keys recursively, keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, 1, { z: 1, y: 2 }], c: 'x' } })).toBe(
      '{"a":{"c":"x","d":[3,1,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('drops undefined members like JSON.stringify and keeps null', () => {
    expect(canonicalJson({ a: undefined, b: null })).toBe('{"b":null}');
    expect(canonicalJson([undefined, 1])).toBe('[null,1]');
  });

  it('refuses text Postgres would not store as given (NUL, lone surrogates), in values and keys', () => {
    for (const bad of ['a\u0000', '\ud800', 'x\udc00y', '\ud83d']) {
      expect(() => canonicalJson({ k: bad })).toThrow(TypeError);
      expect(() => canonicalJson({ [bad]: 1 })).toThrow(TypeError);
      expect(() => canonicalJson([bad])).toThrow(TypeError);
    }
    expect(canonicalJson({ k: '\ud83d\ude00' })).toBe('{"k":"\ud83d\ude00"}');
  });

  it('escapes strings and keys the JSON way', () => {
    expect(canonicalJson({ 'k"': 'a\nb' })).toBe('{"k\\"":"a\\nb"}');
  });
});

describe('hashRow', () => {
  it('is a sha256 hex that does not depend on key order in data', () => {
    const h = hashRow(row);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(hashRow({ ...row, data: { a: { c: 'x', d: [1, { y: 2, z: 1 }] }, b: 1 } })).toBe(h);
  });

  it('changes when any hashed field changes', () => {
    const h = hashRow(row);
    const variants: Partial<ChainRow>[] = [
      { prev_hash: '1'.repeat(64) },
      { id: '00000000-0000-4000-8000-000000000000' },
      { at: '2026-01-01T00:00:00.124Z' },
      { type: 'login.failed' },
      { actor: null },
      { subject: 'u2' },
      { reason: null },
      { data: { b: 2, a: row.data.a } },
    ];
    for (const v of variants) expect(hashRow({ ...row, ...v })).not.toBe(h);
  });
});
