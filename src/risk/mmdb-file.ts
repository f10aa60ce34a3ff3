// A MaxMind DB (MMDB v2) reader that reads the file through positioned reads and a small page
// cache instead of loading it whole: the DB-IP city files are ~130 MB, and every API and worker
// process used to hold a private copy. The kernel's page cache is shared between processes, so N
// processes now cost one copy of the hot pages. Written from the MaxMind DB format specification.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parseIp, unmapIPv4 } from './cidr.ts';

const METADATA_MARKER = Buffer.from([0xab, 0xcd, 0xef, ...Buffer.from('MaxMind.com')]);
const PAGE = 4096;

export interface MmdbMetadata {
  node_count: number;
  record_size: number;
  ip_version: number;
  database_type?: string;
  build_epoch?: number;
  [k: string]: unknown;
}

/** Records are shared between callers, so none may change one. */
function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/** Bytes of a file by position, through a bounded least-recently-used page cache. */
class PagedFile {
  private pages = new Map<number, Buffer>();
  constructor(
    private fd: number,
    readonly size: number,
    private maxPages: number,
  ) {}

  private page(n: number): Buffer {
    let p = this.pages.get(n);
    if (p) {
      // Re-insert: Map iteration order is insertion order, so the first key is the least recent.
      this.pages.delete(n);
      this.pages.set(n, p);
      return p;
    }
    const start = n * PAGE;
    const len = Math.min(PAGE, this.size - start);
    p = Buffer.allocUnsafe(len);
    let done = 0;
    while (done < len) {
      const r = readSync(this.fd, p, done, len - done, start + done);
      if (r === 0) throw new Error('mmdb: unexpected end of file');
      done += r;
    }
    this.pages.set(n, p);
    if (this.pages.size > this.maxPages) this.pages.delete(this.pages.keys().next().value as number);
    return p;
  }

  private lastN = -1;
  private last: Buffer = Buffer.alloc(0);

  byte(offset: number): number {
    const n = (offset / PAGE) | 0;
    if (n !== this.lastN) {
      this.last = this.page(n);
      this.lastN = n;
    }
    return this.last[offset - n * PAGE];
  }

  bytes(offset: number, length: number): Buffer {
    const first = Math.floor(offset / PAGE);
    const last = Math.floor((offset + length - 1) / PAGE);
    if (length > 0 && first === last) {
      const p = this.page(first);
      const at = offset % PAGE;
      return p.subarray(at, at + length);
    }
    const out = Buffer.allocUnsafe(length);
    let copied = 0;
    while (copied < length) {
      const pos = offset + copied;
      const p = this.page(Math.floor(pos / PAGE));
      const at = pos % PAGE;
      const n = Math.min(p.length - at, length - copied);
      p.copy(out, copied, at, at + n);
      copied += n;
    }
    return out;
  }

  close() {
    closeSync(this.fd);
    this.pages.clear();
    this.lastN = -1;
  }
}

/** Reads one MMDB file; `get(ip)` answers the record of the network holding that address, or null. */
export class MmdbFile {
  readonly metadata: MmdbMetadata;
  private file: PagedFile;
  private nodeBytes: number;
  private dataStart: number;
  private ipv4Start = 0;
  private ipv4StartDepth = 0;
  private records = new Map<number, unknown>();

  constructor(path: string, opts: { cachePages?: number } = {}) {
    const fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    this.file = new PagedFile(fd, size, opts.cachePages ?? 1024);
    // The metadata section starts after the last marker, within the file's last 128 KiB.
    const tailLen = Math.min(size, 128 * 1024);
    const tail = this.file.bytes(size - tailLen, tailLen);
    const at = tail.lastIndexOf(METADATA_MARKER);
    if (at < 0) {
      this.file.close();
      throw new Error(`${path} is not a MaxMind DB file (no metadata marker)`);
    }
    const metaStart = size - tailLen + at + METADATA_MARKER.length;
    this.metadata = this.decodeAt(metaStart, metaStart).value as MmdbMetadata;
    const { node_count, record_size } = this.metadata;
    if (![24, 28, 32].includes(record_size)) throw new Error(`mmdb: unsupported record size ${record_size}`);
    this.nodeBytes = (record_size * 2) / 8;
    this.dataStart = node_count * this.nodeBytes + 16;
    if (this.metadata.ip_version === 6) {
      // IPv4 addresses live under ::/96 in an IPv6 tree: walk 96 zero bits once.
      let node = 0;
      let depth = 0;
      for (; depth < 96 && node < node_count; depth++) node = this.record(node, 0);
      this.ipv4Start = node;
      this.ipv4StartDepth = depth;
    }
  }

  private record(node: number, bit: number): number {
    const f = this.file;
    const off = node * this.nodeBytes;
    const rs = this.metadata.record_size;
    if (rs === 24) {
      const o = bit === 0 ? off : off + 3;
      return (f.byte(o) << 16) | (f.byte(o + 1) << 8) | f.byte(o + 2);
    }
    if (rs === 32) {
      const o = bit === 0 ? off : off + 4;
      return f.byte(o) * 0x1000000 + ((f.byte(o + 1) << 16) | (f.byte(o + 2) << 8) | f.byte(o + 3));
    }
    // 28 bits: the middle byte's high nibble extends the left record, its low nibble the right.
    const mid = f.byte(off + 3);
    if (bit === 0) return (mid >> 4) * 0x1000000 + ((f.byte(off) << 16) | (f.byte(off + 1) << 8) | f.byte(off + 2));
    return (mid & 0x0f) * 0x1000000 + ((f.byte(off + 4) << 16) | (f.byte(off + 5) << 8) | f.byte(off + 6));
  }

  /** The record (frozen, shared) for an address, or null when the database has none (or the address is malformed). */
  get(ip: string): unknown {
    const parsed = parseIp(ip);
    if (!parsed) return null;
    const mapped = unmapIPv4(parsed);
    const v4 = mapped ?? (parsed.family === 4 ? parsed : null);
    const { node_count } = this.metadata;
    let node: number;
    let bits: bigint;
    let width: number;
    if (v4) {
      node = this.ipv4Start;
      bits = v4.value;
      width = 32;
    } else {
      if (this.metadata.ip_version === 4) return null;
      node = 0;
      bits = parsed.value;
      width = 128;
    }
    if (width === 32) {
      const n32 = Number(bits);
      for (let i = 31; i >= 0 && node < node_count; i--) node = this.record(node, (n32 >>> i) & 1);
    } else {
      for (let i = width - 1; i >= 0 && node < node_count; i--) node = this.record(node, Number((bits >> BigInt(i)) & 1n));
    }
    if (node <= node_count) return null;
    const offset = node - node_count - 16 + this.dataStart;
    // Many networks share one record (a city): decoded records are kept by offset, boundedly.
    const hit = this.records.get(offset);
    if (hit !== undefined) return hit;
    const value = deepFreeze(this.decodeAt(offset, this.dataStart).value);
    if (this.records.size >= 4096) this.records.delete(this.records.keys().next().value as number);
    this.records.set(offset, value);
    return value;
  }

  private decodeAt(offset: number, base: number): { value: unknown; next: number } {
    const f = this.file;
    const ctrl = f.byte(offset++);
    let type = ctrl >> 5;
    if (type === 1) {
      // Pointer: its size bits say how many bytes follow; it points into the data section.
      const ss = (ctrl >> 3) & 0x3;
      const vvv = ctrl & 0x7;
      let p: number;
      if (ss === 0) p = (vvv << 8) | f.byte(offset);
      else if (ss === 1) p = ((vvv << 16) | f.bytes(offset, 2).readUInt16BE(0)) + 2048;
      else if (ss === 2) p = vvv * 0x1000000 + f.bytes(offset, 3).readUIntBE(0, 3) + 526336;
      else p = f.bytes(offset, 4).readUInt32BE(0);
      return { value: this.decodeAt(base + p, base).value, next: offset + ss + 1 };
    }
    if (type === 0) type = 7 + f.byte(offset++);
    let size = ctrl & 0x1f;
    if (size === 29) size = 29 + f.byte(offset++);
    else if (size === 30) {
      size = 285 + f.bytes(offset, 2).readUInt16BE(0);
      offset += 2;
    } else if (size === 31) {
      size = 65821 + f.bytes(offset, 3).readUIntBE(0, 3);
      offset += 3;
    }
    switch (type) {
      case 2:
        return { value: f.bytes(offset, size).toString('utf8'), next: offset + size };
      case 3:
        return { value: f.bytes(offset, 8).readDoubleBE(0), next: offset + 8 };
      case 4:
        return { value: Buffer.from(f.bytes(offset, size)), next: offset + size };
      case 5:
      case 6:
        return { value: size === 0 ? 0 : f.bytes(offset, size).readUIntBE(0, size), next: offset + size };
      case 8: {
        if (size === 0) return { value: 0, next: offset };
        const raw = f.bytes(offset, size).readUIntBE(0, size);
        // int32 is stored in 0–4 bytes; only a full 4-byte value can be negative.
        return { value: size === 4 ? raw | 0 : raw, next: offset + size };
      }
      case 9:
      case 10: {
        let v = 0n;
        const b = f.bytes(offset, size);
        for (const x of b) v = (v << 8n) | BigInt(x);
        return { value: v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v, next: offset + size };
      }
      case 7: {
        const obj: Record<string, unknown> = {};
        let at = offset;
        for (let i = 0; i < size; i++) {
          const k = this.decodeAt(at, base);
          const v = this.decodeAt(k.next, base);
          obj[String(k.value)] = v.value;
          at = v.next;
        }
        return { value: obj, next: at };
      }
      case 11: {
        const arr: unknown[] = [];
        let at = offset;
        for (let i = 0; i < size; i++) {
          const v = this.decodeAt(at, base);
          arr.push(v.value);
          at = v.next;
        }
        return { value: arr, next: at };
      }
      case 14:
        return { value: size !== 0, next: offset };
      case 15:
        return { value: f.bytes(offset, 4).readFloatBE(0), next: offset + 4 };
      default:
        throw new Error(`mmdb: unsupported data type ${type} at ${offset - 1}`);
    }
  }

  close() {
    this.file.close();
  }
}
