import { describe, expect, it } from 'vitest';
import { assertStorable, assertUniqueMembers, MAX_JSON_DEPTH } from '../../src/http/input.ts';
import { isStorableText, storableText } from '../../src/db/text.ts';

const detail = (f: () => void) => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string; detail?: string }).code + ' ' + (e as { detail?: string }).detail;
  }
  return 'ok';
};

describe('the input rule', () => {
  it('tells storable text from NUL and unpaired surrogates, and maps the latter as Postgres does', () => {
    expect(['', 'abc', '\ufffd', '\ud83d\ude00', 'é\u2028'].map(isStorableText)).toEqual([true, true, true, true, true]);
    expect(['\u0000', 'a\ud800', '\udc00b', '\ude00\ud83d', '\ud83d'].map(isStorableText)).toEqual([false, false, false, false, false]);
    expect(storableText('a\u0000b\ud800c\ud83d\ude00')).toBe('a\ufffdb\ufffdc\ud83d\ude00');
  });

  it('names the first offending field, in values and member names, at any depth', () => {
    expect(detail(() => assertStorable({ a: [{ b: 'ok' }, { c: 'x\u0000' }] }))).toMatch(/^VALIDATION_FAILED a\.1\.c: /);
    expect(detail(() => assertStorable({ a: { ['\ud800']: 1 } }))).toMatch(/^VALIDATION_FAILED a\.\(invalid member name\): member names/);
    expect(detail(() => assertStorable('\udc00'))).toMatch(/^VALIDATION_FAILED body: /);
    expect(detail(() => assertStorable({ q: '\u0000' }, 'query'))).toMatch(/^VALIDATION_FAILED q: /);
    expect(detail(() => assertStorable({ a: 1, b: [true, null, 'ok \ud83d\ude00'] }))).toBe('ok');
  });

  it(`refuses nesting past ${MAX_JSON_DEPTH} levels without recursing`, () => {
    const deep = JSON.parse('['.repeat(100_000) + ']'.repeat(100_000));
    expect(detail(() => assertStorable(deep))).toMatch(/nested more than 32 levels/);
    let ok: unknown = 'x';
    for (let i = 0; i < MAX_JSON_DEPTH; i++) ok = [ok];
    expect(detail(() => assertStorable(ok))).toBe('ok');
  });

  it('refuses a member named twice in one object, however it is escaped, and nothing else', () => {
    expect(detail(() => assertUniqueMembers('{"a":1,"a":2}'))).toMatch(/^VALIDATION_FAILED a: /);
    expect(detail(() => assertUniqueMembers('{"a":1, "\\u0061" :2}'))).toMatch(/^VALIDATION_FAILED a: /);
    expect(detail(() => assertUniqueMembers('{"x":{"a":1},"y":[{"a":1},{"a":2,"b":{"a":3}}],"z":"a"}'))).toBe('ok');
    expect(detail(() => assertUniqueMembers('{"s":"\\"a\\":1,{\\"a\\":2}","a":["a","a"]}'))).toBe('ok');
    expect(detail(() => assertUniqueMembers('["a","a",{"a":{"a":{"a":1}}}]'))).toBe('ok');
  });
});
