import { AppError } from '../errors.ts';

/**
 * Opaque keyset cursors: base64url of a small JSON array naming the last row's sort key. A page
 * after it is `WHERE key > cursor`, so rows inserted meanwhile never shift, repeat or hide the
 * rows of pages still to come. Stops a forged cursor from reaching SQL as anything but checked
 * values: a cursor that does not decode to the expected shape is 400 INVALID_CURSOR.
 */
export const cursor = {
  encode: (parts: readonly (string | number)[]): string => Buffer.from(JSON.stringify(parts)).toString('base64url'),
  /** A `(created_at, id)` position; `at` is the exact stored time as text with microseconds. */
  timeId(c: string): { at: string; id: string } {
    const v = decode(c);
    if (v.length !== 2 || typeof v[0] !== 'string' || typeof v[1] !== 'string' || !AT_RE.test(v[0]) || Number.isNaN(Date.parse(v[0])) || !UUID_RE.test(v[1])) throw bad();
    return { at: v[0], id: v[1] };
  },
  /** A bigserial position (the audit chain's `seq`). */
  seq(c: string): number {
    const v = decode(c);
    if (v.length !== 1 || typeof v[0] !== 'number' || !Number.isSafeInteger(v[0]) || v[0] < 0) throw bad();
    return v[0];
  },
};

/** SQL text of a timestamptz column as the exact UTC key `cursor.timeId` accepts. */
export const atKey = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

const AT_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const bad = () => new AppError('INVALID_CURSOR');

function decode(c: string): unknown[] {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(c)) throw bad();
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(v)) throw bad();
  return v;
}
