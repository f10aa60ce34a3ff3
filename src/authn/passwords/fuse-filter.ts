import { createHash } from 'node:crypto';
import { endianness } from 'node:os';

/**
 * A binary fuse filter with 16-bit fingerprints (Graf & Lemire, "Binary Fuse Filters: Fast and
 * Smaller Than Xor Filters", 2022): membership of a fixed set in ~18 bits an entry, three array
 * reads a lookup, false-positive rate 2^-16, and no false negatives.
 *
 * Keys are SHA-1 digests of the UTF-8 password (the same digest Have I Been Pwned's range API
 * uses), so a lookup hashes once and the filter holds nothing a password can be read back from.
 * The seed re-mixes the digest's words; a construction that does not peel retries with another.
 */

export interface FuseFilter {
  seed: number;
  segmentLength: number;
  segmentCount: number;
  /** segmentCount × segmentLength: the range of the first position. */
  segmentCountLength: number;
  fingerprints: Uint16Array;
  /** Distinct keys it was built from. */
  size: number;
}

/** murmur3's 32-bit finaliser: every input bit reaches every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A password's key: its SHA-1 digest as five 32-bit words. */
export function keyOf(password: string): Uint32Array {
  return wordsOf(createHash('sha1').update(password, 'utf8').digest());
}

export function wordsOf(digest: Buffer): Uint32Array {
  const w = new Uint32Array(5);
  for (let i = 0; i < 5; i++) w[i] = digest.readUInt32BE(i * 4);
  return w;
}

interface Positions {
  h0: number;
  h1: number;
  h2: number;
  fp: number;
}

function positions(f: Pick<FuseFilter, 'seed' | 'segmentLength' | 'segmentCountLength'>, w: Uint32Array, out: Positions): Positions {
  const a = fmix32((w[0] ^ f.seed) >>> 0);
  const b = fmix32((w[1] ^ Math.imul(f.seed, 0x9e3779b1)) >>> 0);
  const mask = f.segmentLength - 1;
  // a · segmentCountLength / 2^32 is exact in a double (a < 2^32, the length < 2^21).
  const h0 = Math.floor((a * f.segmentCountLength) / 4294967296);
  const h1 = h0 + f.segmentLength;
  const h2 = h1 + f.segmentLength;
  out.h0 = h0;
  out.h1 = (h1 ^ (b & mask)) >>> 0;
  out.h2 = (h2 ^ ((b >>> 16) & mask)) >>> 0;
  out.fp = fmix32((w[2] ^ w[3] ^ f.seed) >>> 0) & 0xffff;
  return out;
}

/** Whether the key is (probably) in the set: never false for a member; 1 in 65 536 for others. */
export function contains(f: FuseFilter, key: Uint32Array): boolean {
  const p = positions(f, key, { h0: 0, h1: 0, h2: 0, fp: 0 });
  return (p.fp ^ f.fingerprints[p.h0] ^ f.fingerprints[p.h1] ^ f.fingerprints[p.h2]) === 0;
}

/** The paper's sizing for arity 3. */
function layout(size: number) {
  let segmentLength = size <= 1 ? 4 : 2 ** Math.floor(Math.log(size) / Math.log(3.33) + 2.25);
  segmentLength = Math.min(segmentLength, 262144);
  const sizeFactor = size <= 1 ? 0 : Math.max(1.125, 0.875 + (0.25 * Math.log(1e6)) / Math.log(size));
  const capacity = Math.round(size * sizeFactor);
  const initSegmentCount = Math.floor((capacity + segmentLength - 1) / segmentLength) - 2;
  let arrayLength = (initSegmentCount + 2) * segmentLength;
  let segmentCount = Math.floor((arrayLength + segmentLength - 1) / segmentLength);
  segmentCount = segmentCount <= 2 ? 1 : segmentCount - 2;
  arrayLength = (segmentCount + 2) * segmentLength;
  return { segmentLength, segmentCount, segmentCountLength: segmentCount * segmentLength, arrayLength };
}

/**
 * Build a filter over distinct keys (SHA-1 words; duplicates must be removed first: two equal
 * keys can never be peeled). Throws after `maxTries` seeds, which for distinct keys does not happen
 * in practice (each try succeeds with probability close to 1).
 */
export function buildFuseFilter(keys: Uint32Array[], opts: { seed?: number; maxTries?: number } = {}): FuseFilter {
  const size = keys.length;
  const l = layout(size);
  const p: Positions = { h0: 0, h1: 0, h2: 0, fp: 0 };
  let seed = opts.seed ?? 0x5eed0001;
  for (let attempt = 0; attempt < (opts.maxTries ?? 100); attempt++, seed = fmix32(seed + 0x9e3779b9)) {
    const f: FuseFilter = { seed, ...l, fingerprints: new Uint16Array(l.arrayLength), size };
    // Per slot: how many keys map to it (count·4) with the xor of their slot index (0–2) in the
    // low bits, and the xor of their key ids, so a slot with one key names it.
    const count = new Uint32Array(l.arrayLength);
    const xorKey = new Int32Array(l.arrayLength);
    const at = (i: number) => {
      positions(f, keys[i], p);
      return [p.h0, p.h1, p.h2];
    };
    for (let i = 0; i < size; i++) {
      const hs = at(i);
      for (let j = 0; j < 3; j++) {
        count[hs[j]] += 4;
        count[hs[j]] ^= j;
        xorKey[hs[j]] ^= i;
      }
    }
    const queue: number[] = [];
    for (let s = 0; s < l.arrayLength; s++) if (count[s] >> 2 === 1) queue.push(s);
    const order = new Int32Array(size);
    const slotOf = new Uint8Array(size);
    let peeled = 0;
    while (queue.length) {
      const s = queue.pop()!;
      if (count[s] >> 2 !== 1) continue;
      const i = xorKey[s];
      const found = count[s] & 3;
      order[peeled] = i;
      slotOf[peeled] = found;
      peeled++;
      const hs = at(i);
      for (let j = 0; j < 3; j++) {
        const h = hs[j];
        count[h] -= 4;
        count[h] ^= j;
        xorKey[h] ^= i;
        if (j !== found && count[h] >> 2 === 1) queue.push(h);
      }
    }
    if (peeled !== size) continue;
    for (let k = size - 1; k >= 0; k--) {
      positions(f, keys[order[k]], p);
      const hs = [p.h0, p.h1, p.h2];
      const found = slotOf[k];
      const a = hs[(found + 1) % 3];
      const b = hs[(found + 2) % 3];
      f.fingerprints[hs[found]] = p.fp ^ f.fingerprints[a] ^ f.fingerprints[b];
    }
    return f;
  }
  throw new Error('binary fuse filter: construction did not converge (duplicate keys?)');
}

/** The committed form: a JSON document (the build copies JSON into dist/) with the fingerprints as base64 (little-endian). */
export interface SerialisedFilter {
  format: 'binary-fuse-16';
  seed: number;
  segmentLength: number;
  segmentCount: number;
  size: number;
  fingerprints: string;
}

export function serialise(f: FuseFilter): SerialisedFilter {
  const buf = Buffer.alloc(f.fingerprints.length * 2);
  for (let i = 0; i < f.fingerprints.length; i++) buf.writeUInt16LE(f.fingerprints[i], i * 2);
  return { format: 'binary-fuse-16', seed: f.seed, segmentLength: f.segmentLength, segmentCount: f.segmentCount, size: f.size, fingerprints: buf.toString('base64') };
}

export function deserialise(s: SerialisedFilter): FuseFilter {
  const buf = Buffer.from(s.fingerprints, 'base64');
  const arrayLength = buf.length / 2;
  if (s.format !== 'binary-fuse-16' || arrayLength !== (s.segmentCount + 2) * s.segmentLength || (s.segmentLength & (s.segmentLength - 1)) !== 0)
    throw new Error('binary fuse filter: inconsistent header');
  const fingerprints = new Uint16Array(arrayLength);
  if (endianness() === 'LE') new Uint8Array(fingerprints.buffer).set(buf);
  else for (let i = 0; i < arrayLength; i++) fingerprints[i] = buf.readUInt16LE(i * 2);
  return { seed: s.seed >>> 0, segmentLength: s.segmentLength, segmentCount: s.segmentCount, segmentCountLength: s.segmentCount * s.segmentLength, fingerprints, size: s.size };
}
