/** One recorded login attempt, as in the evaluation JSONL format (ts held as epoch ms here). */
export interface LoginRecord {
  ts: number;
  user: string;
  ip: string;
  deviceId: string | null;
  userAgent: string | null;
  passwordCorrect: boolean;
  label?: 'benign' | 'attack';
  kind?: string;
}

/** One JSONL line; key order fixed so files diff cleanly. */
export function formatRecord(r: LoginRecord): string {
  const o: Record<string, unknown> = {
    ts: new Date(r.ts).toISOString(),
    user: r.user,
    ip: r.ip,
    deviceId: r.deviceId,
    userAgent: r.userAgent,
    passwordCorrect: r.passwordCorrect,
  };
  if (r.label !== undefined) o.label = r.label;
  if (r.kind !== undefined) o.kind = r.kind;
  return JSON.stringify(o);
}

/** An attempt read back (e.g. from login_events) as one evaluation-format JSONL line. */
export function formatAttempt(a: {
  at: number; user: string; ip: string; deviceId: string | null; userAgent: string | null; passwordCorrect: boolean;
  label?: 'benign' | 'attack'; kind?: string; stepUpPassed?: boolean; recordedDecision?: string; recordedOutcome?: string;
}): string {
  const o: Record<string, unknown> = JSON.parse(formatRecord({ ts: a.at, user: a.user, ip: a.ip, deviceId: a.deviceId, userAgent: a.userAgent, passwordCorrect: a.passwordCorrect, label: a.label, kind: a.kind }));
  if (a.stepUpPassed !== undefined) o.stepUpPassed = a.stepUpPassed;
  if (a.recordedDecision !== undefined) o.recordedDecision = a.recordedDecision;
  if (a.recordedOutcome !== undefined) o.recordedOutcome = a.recordedOutcome;
  return JSON.stringify(o);
}
