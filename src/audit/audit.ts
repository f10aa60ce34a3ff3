import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Db, Queryable } from '../db/db.ts';
import { sha256 } from '../crypto/seal.ts';
import { isStorableText, storableText } from '../db/text.ts';
import type { AuditEventType } from '../../contracts/audit-events.ts';

/**
 * One audit event. `data` is stored as jsonb and is part of the hash chain forever: it must be
 * plain JSON and must never carry a secret (password, code, token, key, session cookie). Callers
 * are responsible for that; put identifiers and reason codes in it, not credentials.
 */
export interface AuditEvent {
  /** One of the typed `<noun>.<past-verb>` names in contracts/audit-events.ts. */
  type: AuditEventType;
  actor?: string | null;
  subject?: string | null;
  reason?: string | null;
  data?: Record<string, unknown>;
}

export interface AuditVerifyResult {
  ok: boolean;
  /** Rows examined, including the first broken one. */
  checked: number;
  /** `seq` of the first row that does not hash or link correctly. */
  brokenAt?: number;
  problem?: string;
}

export interface Audit {
  /** Append inside `q` (an open transaction) when given, else in a transaction of its own. */
  append(e: AuditEvent, q?: Queryable): Promise<void>;
  /**
   * Walk the chain in seq order and report the first row that was modified, removed, inserted or
   * reordered. Removing rows from the *end* leaves a valid shorter chain: anchor the head hash
   * elsewhere (logs, an external store) if that matters.
   */
  verify(): Promise<AuditVerifyResult>;
}

/** prev_hash of the first row. */
export const GENESIS_HASH = '0'.repeat(64);

const TYPE_RE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
const PAGE = 500;

/**
 * JSON with object keys sorted recursively (jsonb reorders keys, so insertion order cannot be
 * trusted) and undefined members dropped, as JSON.stringify does. Only text Postgres stores as
 * given may be hashed (src/db/text.ts): the hash is over exactly the bytes the row holds, so a
 * string with NUL or a lone surrogate is refused here rather than hashed in a form never stored.
 */
export function canonicalJson(v: unknown): string {
  if (typeof v === 'string') {
    if (!isStorableText(v)) throw new TypeError('not storable text: NUL or an unpaired surrogate');
    return JSON.stringify(v);
  }
  if (v === null || typeof v !== 'object') {
    const s = JSON.stringify(v);
    if (s === undefined) throw new TypeError(`not JSON-serialisable: ${typeof v}`);
    return s;
  }
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : canonicalJson(x))).join(',')}]`;
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o)
    .filter((k) => o[k] !== undefined && typeof o[k] !== 'function')
    .sort();
  return `{${keys.map((k) => `${canonicalJson(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

export interface ChainRow {
  prev_hash: string;
  id: string;
  at: string; // ISO 8601 with milliseconds
  type: string;
  actor: string | null;
  subject: string | null;
  reason: string | null;
  data: Record<string, unknown>;
}

/** The row hash: sha256 hex of the canonical serialisation of everything but seq and hash. */
export function hashRow(r: ChainRow): string {
  return sha256(
    canonicalJson({
      prev_hash: r.prev_hash,
      id: r.id,
      at: r.at,
      type: r.type,
      actor: r.actor,
      subject: r.subject,
      reason: r.reason,
      data: r.data,
    }),
  );
}

/**
 * Round-trip through JSON so what we hash is exactly what jsonb will give back (Dates → ISO), with
 * every string and key in its storable form (NUL and lone surrogates → U+FFFD): such text comes
 * from callers, not clients (the HTTP boundary refuses it), and an audit event must still be
 * written, and verify, rather than fail the action it records.
 */
function normaliseData(data: Record<string, unknown> | undefined): Record<string, unknown> {
  if (data === undefined) return {};
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new TypeError('audit data must be a JSON object');
  }
  return JSON.parse(JSON.stringify(data), (_k, v: unknown) => {
    if (typeof v === 'string') return storableText(v);
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [storableText(k), x]));
    }
    return v;
  }) as Record<string, unknown>;
}

const storable = (v: string | null | undefined): string | null => (v == null ? null : storableText(v));

const toIso = (v: unknown): string => (v instanceof Date ? v : new Date(String(v))).toISOString();

export function createAudit(db: Db, clock: Clock): Audit {
  async function appendIn(q: Queryable, e: AuditEvent): Promise<void> {
    if (!TYPE_RE.test(e.type)) throw new TypeError(`audit type must be <noun>.<past-verb>: ${e.type}`);
    const data = normaliseData(e.data);
    // Serialise appenders: the lock conflicts with itself and with plain INSERTs, so between
    // reading the head and inserting after it nobody else can extend the chain (no fork).
    // Held until the surrounding transaction ends.
    await q.query('LOCK TABLE audit_events IN SHARE ROW EXCLUSIVE MODE');
    const { rows } = await q.query<{ hash: string | null; iso: string }>(
      `SELECT (SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1) AS hash,
              current_setting('transaction_isolation') AS iso`,
    );
    // Under REPEATABLE READ/SERIALIZABLE the snapshot may predate the lock and miss the head.
    if (rows[0].iso !== 'read committed') {
      throw new Error(`audit append needs a READ COMMITTED transaction, got ${rows[0].iso}`);
    }
    const row: ChainRow = {
      prev_hash: rows[0].hash ?? GENESIS_HASH,
      id: randomUUID(),
      at: new Date(clock.now()).toISOString(),
      type: e.type,
      actor: storable(e.actor),
      subject: storable(e.subject),
      reason: storable(e.reason),
      data,
    };
    await q.query(
      `INSERT INTO audit_events (id, at, type, actor, subject, reason, data, prev_hash, hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)`,
      [row.id, row.at, row.type, row.actor, row.subject, row.reason, JSON.stringify(data), row.prev_hash, hashRow(row)],
    );
  }

  return {
    async append(e, q) {
      if (q) return appendIn(q, e);
      await db.tx((t) => appendIn(t, e));
    },

    async verify() {
      let prev = GENESIS_HASH;
      let lastSeq = 0;
      let checked = 0;
      for (;;) {
        // Keyset pages keep memory flat however long the chain is.
        const { rows } = await db.query<{
          seq: number;
          id: string;
          at: Date | string;
          type: string;
          actor: string | null;
          subject: string | null;
          reason: string | null;
          data: Record<string, unknown>;
          prev_hash: string;
          hash: string;
        }>(
          `SELECT seq, id, at, type, actor, subject, reason, data, prev_hash, hash
             FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT ${PAGE}`,
          [lastSeq],
        );
        for (const r of rows) {
          checked++;
          const seq = Number(r.seq);
          if (r.prev_hash !== prev) {
            return {
              ok: false,
              checked,
              brokenAt: seq,
              problem: 'link broken: prev_hash does not match the previous row (row removed, inserted or reordered)',
            };
          }
          const data = typeof r.data === 'string' ? (JSON.parse(r.data) as Record<string, unknown>) : r.data;
          const expected = hashRow({
            prev_hash: r.prev_hash,
            id: String(r.id),
            at: toIso(r.at),
            type: r.type,
            actor: r.actor,
            subject: r.subject,
            reason: r.reason,
            data,
          });
          if (expected !== r.hash) {
            return { ok: false, checked, brokenAt: seq, problem: 'hash mismatch: row content was modified' };
          }
          prev = r.hash;
          lastSeq = seq;
        }
        if (rows.length < PAGE) return { ok: true, checked };
      }
    },
  };
}
