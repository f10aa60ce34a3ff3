import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { isIP } from 'node:net';
import type { LoginRecord } from './record.ts';

/** One login attempt read for replay (the evaluation JSONL format, with its line number). */
export interface Attempt extends Omit<LoginRecord, 'ts'> {
  line: number;
  at: number;
  /**
   * Whether a step-up on this attempt was passed (recorded logins know it; a labelled set
   * assumes the owner passes and the attacker does not). Decides what history keeps.
   */
  stepUpPassed?: boolean;
  /** The decision the live path made, when replaying recorded logins (for a fidelity check). */
  recordedDecision?: 'allow' | 'step_up' | 'deny';
  /** How the recorded attempt ended live (history keeps this when the replay decides the same). */
  recordedOutcome?: 'succeeded' | 'stepped_up' | 'denied';
}

export interface Malformed {
  line: number;
  error: string;
}

export interface ReadStats {
  lines: number;
  records: number;
  blank: number;
  malformed: number;
  /** The first malformed lines (bounded so a garbage file does not fill memory). */
  malformedSamples: Malformed[];
  bytes: number;
}

const MAX_SAMPLES = 100;
const MAX_FIELD = 2048;

/** Validate one parsed line; unknown fields are ignored so richer exports still replay. */
export function toAttempt(o: unknown, line: number): Attempt | string {
  if (!o || typeof o !== 'object' || Array.isArray(o)) return 'not a JSON object';
  const r = o as Record<string, unknown>;
  if (typeof r.ts !== 'string' && typeof r.ts !== 'number') return 'ts: expected an ISO-8601 string';
  const at = typeof r.ts === 'number' ? r.ts : Date.parse(r.ts);
  if (!Number.isFinite(at)) return `ts: not a date (${String(r.ts).slice(0, 40)})`;
  if (typeof r.user !== 'string' || r.user.length === 0 || r.user.length > 320) return 'user: expected a non-empty string';
  if (typeof r.ip !== 'string' || isIP(r.ip.split('%')[0]) === 0) return `ip: not an IP address (${String(r.ip).slice(0, 60)})`;
  const deviceId = r.deviceId ?? null;
  if (deviceId !== null && (typeof deviceId !== 'string' || deviceId.length > MAX_FIELD)) return 'deviceId: expected a string or null';
  const userAgent = r.userAgent ?? null;
  if (userAgent !== null && (typeof userAgent !== 'string' || userAgent.length > MAX_FIELD)) return 'userAgent: expected a string or null';
  if (typeof r.passwordCorrect !== 'boolean') return 'passwordCorrect: expected true or false';
  const a: Attempt = { line, at, user: r.user, ip: r.ip, deviceId, userAgent, passwordCorrect: r.passwordCorrect };
  if (r.label !== undefined && r.label !== null) {
    if (r.label !== 'benign' && r.label !== 'attack') return 'label: expected "benign" or "attack"';
    a.label = r.label;
  }
  if (r.kind !== undefined && r.kind !== null) {
    if (typeof r.kind !== 'string' || r.kind.length > 100) return 'kind: expected a short string';
    a.kind = r.kind;
  }
  if (r.stepUpPassed !== undefined && r.stepUpPassed !== null) {
    if (typeof r.stepUpPassed !== 'boolean') return 'stepUpPassed: expected true or false';
    a.stepUpPassed = r.stepUpPassed;
  }
  if (r.recordedDecision !== undefined && r.recordedDecision !== null) {
    if (r.recordedDecision !== 'allow' && r.recordedDecision !== 'step_up' && r.recordedDecision !== 'deny') return 'recordedDecision: expected allow, step_up or deny';
    a.recordedDecision = r.recordedDecision;
  }
  if (r.recordedOutcome !== undefined && r.recordedOutcome !== null) {
    if (r.recordedOutcome !== 'succeeded' && r.recordedOutcome !== 'stepped_up' && r.recordedOutcome !== 'denied') return 'recordedOutcome: expected succeeded, stepped_up or denied';
    a.recordedOutcome = r.recordedOutcome;
  }
  return a;
}

/**
 * Stream attempts from JSONL (a file path, a string, or a readable), one line at a time so a
 * file of millions of lines never sits in memory. A malformed line is reported with its line
 * number in `stats` and skipped; the run goes on.
 */
export async function* readAttempts(
  source: { path: string } | { text: string } | { stream: NodeJS.ReadableStream },
  stats: ReadStats,
): AsyncGenerator<Attempt> {
  const input =
    'path' in source
      ? createReadStream(source.path, { encoding: 'utf8', highWaterMark: 1 << 20 })
      : 'text' in source
        ? Readable.from([source.text])
        : source.stream;
  const rl = createInterface({ input, crlfDelay: Infinity });
  let n = 0;
  for await (const raw of rl) {
    n++;
    stats.lines = n;
    stats.bytes += raw.length + 1; // characters: close enough to bytes for a progress bar, and cheap
    const text = n === 1 && raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
    if (text.trim() === '') {
      stats.blank++;
      continue;
    }
    let parsed: unknown;
    let result: Attempt | string;
    try {
      parsed = JSON.parse(text);
      result = toAttempt(parsed, n);
    } catch (e) {
      result = `invalid JSON: ${(e as Error).message.slice(0, 120)}`;
    }
    if (typeof result === 'string') {
      stats.malformed++;
      if (stats.malformedSamples.length < MAX_SAMPLES) stats.malformedSamples.push({ line: n, error: result });
      continue;
    }
    stats.records++;
    yield result;
  }
}

export function newReadStats(): ReadStats {
  return { lines: 0, records: 0, blank: 0, malformed: 0, malformedSamples: [], bytes: 0 };
}
