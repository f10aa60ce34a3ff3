import { describe, expect, it } from 'vitest';
import { API_KEY_PREFIX, generateApiKey, hashApiKey, isWellFormedApiKey } from '../../src/credentials/api-keys/format.ts';

describe('API key format (prefix + random secret + checksum)', () => {
  it('generates recognisable, distinct, well-formed keys whose hash is what is stored', () => {
    const keys = Array.from({ length: 200 }, () => generateApiKey());
    expect(new Set(keys.map((k) => k.key)).size).toBe(200);
    for (const k of keys) {
      expect(k.key.startsWith(API_KEY_PREFIX)).toBe(true);
      expect(k.key).toHaveLength(47);
      expect(isWellFormedApiKey(k.key)).toBe(true);
      expect(k.hash).toBe(hashApiKey(k.key));
      expect(k.hash).not.toContain(k.key.slice(API_KEY_PREFIX.length));
      expect(k.display).toBe(k.key.slice(0, API_KEY_PREFIX.length + 6));
    }
  });

  it('the checksum catches every single-character change, truncation and extension', () => {
    const { key } = generateApiKey();
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    let caught = 0;
    let tried = 0;
    for (let i = API_KEY_PREFIX.length; i < key.length; i++) {
      for (const ch of alphabet) {
        if (ch === key[i]) continue;
        tried++;
        if (!isWellFormedApiKey(key.slice(0, i) + ch + key.slice(i + 1))) caught++;
      }
    }
    expect(caught).toBe(tried);
    expect(isWellFormedApiKey(key.slice(0, -1))).toBe(false);
    expect(isWellFormedApiKey(key + 'a')).toBe(false);
    expect(isWellFormedApiKey(key.replace(API_KEY_PREFIX, 'thr_test_'))).toBe(false);
    for (const bad of ['', 'thr_live_', 'Bearer x', `${key} `, key.toUpperCase(), `${key.slice(0, 20)}\u0000${key.slice(21)}`]) expect(isWellFormedApiKey(bad)).toBe(false);
  });
});
