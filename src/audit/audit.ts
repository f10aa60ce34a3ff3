import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Db, Queryable } from '../db/db.ts';
import { sha256 } from '../crypto/seal.ts';
import { isStorableText, storableText } from '../db/text.ts';
import type { AuditEventType } from '../../contracts/audit-events.ts';
import { metrics } from '../metrics/metrics.ts';

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
  /**
   * Append inside `q` (an open transaction) when given. Otherwise the event joins the next group
   * commit: appends from anywhere in this process that arrive while a batch is being written are
   * chained and written together in one transaction, and each call resolves once its batch has
   * committed (or rejects with the batch). Stops chain-lock contention from serialising logins.
   */
  append(e: AuditEvent, q?: Queryable): Promise<void>;
  /** Several events chained in this order, written together (inside `q`, or in one group commit). */
  appendMany(es: readonly AuditEvent[], q?: Queryable): Promise<void>;
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

/** An event checked and normalised when it was appended; chained and hashed when written. */
interface Prepared {
  id: string;
  at: string;
  type: string;
  actor: string | null;
  subject: string | null;
  reason: string | null;
  data: Record<string, unknown>;
}

/** Most events written by one statement (a burst is cut into several batches). */
const MAX_BATCH = 500;

export function createAudit(db: Db, clock: Clock): Audit {
  /** Checked at the call, so a bad event fails its caller and never a batch of others. */
  function prepare(e: AuditEvent): Prepared {
    if (!TYPE_RE.test(e.type)) throw new TypeError(`audit type must be <noun>.<past-verb>: ${e.type}`);
    metrics.auditEvents.inc({ type: e.type });
    return {
      id: randomUUID(),
      at: new Date(clock.now()).toISOString(),
      type: e.type,
      actor: storable(e.actor),
      subject: storable(e.subject),
      reason: storable(e.reason),
      data: normaliseData(e.data),
    };
  }

  /** Chain `events` after the current head and insert them with one statement, inside `q`. */
  async function writeIn(q: Queryable, events: readonly Prepared[]): Promise<void> {
    if (!events.length) return;
    // Serialise appenders: the lock conflicts with itself and with plain INSERTs, so between
    // reading the head and inserting after it nobody else can extend the chain (no fork).
    // Held until the surrounding transaction ends. The lock and the head are one round trip
    // (audit_lock_head(), db/migrations/0050): the head is read after the lock is held.
    const { rows } = await q.query<{ hash: string | null; iso: string }>(
      `SELECT audit_lock_head() AS hash, current_setting('transaction_isolation') AS iso`,
    );
    // Under REPEATABLE READ/SERIALIZABLE the snapshot may predate the lock and miss the head.
    if (rows[0].iso !== 'read committed') {
      throw new Error(`audit append needs a READ COMMITTED transaction, got ${rows[0].iso}`);
    }
    let prev = rows[0].hash ?? GENESIS_HASH;
    const params: unknown[] = [];
    const tuples: string[] = [];
    for (const e of events) {
      const row: ChainRow = { prev_hash: prev, ...e };
      const hash = hashRow(row);
      const b = params.length;
      tuples.push(`($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7}::jsonb, $${b + 8}, $${b + 9})`);
      params.push(row.id, row.at, row.type, row.actor, row.subject, row.reason, JSON.stringify(row.data), row.prev_hash, hash);
      prev = hash;
    }
    // One multi-row INSERT: seq follows the VALUES order, which is the chain order.
    await q.query(`INSERT INTO audit_events (id, at, type, actor, subject, reason, data, prev_hash, hash) VALUES ${tuples.join(', ')}`, params);
  }

  // Group commit: at most one batch in flight per process; whatever arrives meanwhile is the next.
  let queue: { events: Prepared[]; resolve: () => void; reject: (e: unknown) => void }[] = [];
  let flushing = false;
  async function flush(): Promise<void> {
    if (flushing) return;
    flushing = true;
    try {
      while (queue.length) {
        const batch: typeof queue = [];
        let n = 0;
        while (queue.length && (n === 0 || n + queue[0].events.length <= MAX_BATCH)) {
          const w = queue.shift()!;
          batch.push(w);
          n += w.events.length;
        }
        try {
          await db.tx((t) => writeIn(t, batch.flatMap((w) => w.events)));
          for (const w of batch) w.resolve();
        } catch (err) {
          // All or nothing: the transaction rolled back, so every caller of this batch hears it.
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      flushing = false;
    }
  }
  function enqueue(events: Prepared[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      queue.push({ events, resolve, reject });
      // The next turn of the event loop: appends made in this one join the same batch.
      if (!flushing && queue.length === 1) setImmediate(() => void flush());
    });
  }

  return {
    async append(e, q) {
      const p = prepare(e);
      if (q) return writeIn(q, [p]);
      return enqueue([p]);
    },

    async appendMany(es, q) {
      if (!es.length) return;
      const ps = es.map(prepare);
      if (q) return writeIn(q, ps);
      return enqueue(ps);
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
