import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { sha256 } from '../../crypto/seal.ts';

/**
 * API keys look like `thr_live_<32 base62 secret><6 base62 checksum>` (47 characters): the prefix
 * makes a leaked key recognisable (secret scanners, logs), the CRC-32 of prefix + secret lets a
 * mistyped or truncated key be refused as malformed (400) without a lookup. The secret is ~190
 * random bits; only its SHA-256 is stored.
 */
export const API_KEY_PREFIX = 'thr_live_';
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SECRET_LEN = 32;
const CHECK_LEN = 6;
const SHAPE = new RegExp(`^${API_KEY_PREFIX}[0-9A-Za-z]{${SECRET_LEN + CHECK_LEN}}$`);

function base62(n: number, width: number): string {
  let s = '';
  for (let i = 0; i < width; i++) {
    s = ALPHABET[n % 62] + s;
    n = Math.floor(n / 62);
  }
  return s;
}

const checksum = (body: string) => base62(crc32(body) >>> 0, CHECK_LEN);

/** A new key (shown once) with its stored hash and the part safe to display. */
export function generateApiKey(): { key: string; hash: string; display: string } {
  // Rejection sampling: 248 = 4 × 62, so every character is uniform.
  let secret = '';
  while (secret.length < SECRET_LEN) for (const b of randomBytes(48)) if (b < 248 && secret.length < SECRET_LEN) secret += ALPHABET[b % 62];
  const body = API_KEY_PREFIX + secret;
  const key = body + checksum(body);
  return { key, hash: hashApiKey(key), display: key.slice(0, API_KEY_PREFIX.length + 6) };
}

/** Stops lookups for garbage: shape and checksum, no I/O. */
export function isWellFormedApiKey(key: string): boolean {
  if (!SHAPE.test(key)) return false;
  const body = key.slice(0, -CHECK_LEN);
  return checksum(body) === key.slice(-CHECK_LEN);
}

export const hashApiKey = (key: string) => sha256(key);
