import { randomUUID } from 'node:crypto';
import type { Audit } from '../audit/audit.ts';
import type { Db, Queryable } from '../db/db.ts';

export type RiskLabel = 'fraud' | 'legit';
export type LabelSource = 'analyst' | 'user_report' | 'step_up';

export interface StoredLabel {
  id: string;
  label: RiskLabel;
  source: LabelSource;
  strength: 'strong' | 'weak';
  actor: string | null;
  note: string | null;
  createdAt: string;
}

/** How much each source weighs: a completed step-up only suggests the owner was there. */
const STRENGTH: Record<LabelSource, 'strong' | 'weak'> = { analyst: 'strong', user_report: 'strong', step_up: 'weak' };

/** Factors that prove possession of something the account owner enrolled (not the password). */
const OWNED_FACTORS = new Set(['webauthn', 'totp', 'sms', 'email', 'recovery_code']);

/**
 * The current label of event `e`: over the labels of every event of its login flow (a label is
 * about the attempt, whichever of its events was named), strong beats weak, then the latest wins,
 * so an analyst can overturn a user's report and any strong label outweighs a step-up.
 */
const CURRENT_LABEL = `SELECT l.label FROM login_event_labels l JOIN login_events x ON x.id = l.login_event_id
   WHERE x.flow_id = e.flow_id OR x.id = e.id
   ORDER BY (l.strength = 'strong') DESC, l.created_at DESC, l.id DESC LIMIT 1`;

export interface NewLabel {
  eventId: string;
  label: RiskLabel;
  source: LabelSource;
  actor?: string | null;
  note?: string | null;
  at: Date;
}

/**
 * Add a label and recompute the event's current label (login_events.label) in one transaction,
 * with the audit event when given, so back-tests never read a label without its derivation.
 * The event row is locked first: two labels landing together derive in order. Returns null
 * when the event does not exist; a second step-up label for one event is a no-op.
 */
export async function addLabel(db: Db, l: NewLabel, audit?: Audit): Promise<StoredLabel | null> {
  return db.tx(async (q) => addLabelIn(q, l, audit));
}

async function addLabelIn(q: Queryable, l: NewLabel, audit?: Audit): Promise<StoredLabel | null> {
  // Lock every event of the attempt (in id order, so two labellers cannot deadlock): labels on
  // different events of one flow then derive one after the other.
  const ev = await q.query(
    `SELECT id FROM login_events
      WHERE id = $1 OR flow_id = (SELECT flow_id FROM login_events WHERE id = $1)
      ORDER BY id FOR UPDATE`,
    [l.eventId],
  );
  if (ev.rowCount === 0) return null;
  const strength = STRENGTH[l.source];
  const { rows } = await q.query<{ id: string; created_at: Date | string }>(
    `INSERT INTO login_event_labels (id, login_event_id, label, source, strength, actor, note, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (login_event_id) WHERE source = 'step_up' DO NOTHING
     RETURNING id, created_at`,
    [randomUUID(), l.eventId, l.label, l.source, strength, l.actor ?? null, l.note ?? null, l.at],
  );
  if (!rows[0]) return null;
  await q.query(
    `UPDATE login_events e SET label = (${CURRENT_LABEL})
      WHERE e.id = $1 OR e.flow_id = (SELECT flow_id FROM login_events WHERE id = $1)`,
    [l.eventId],
  );
  if (audit) {
    await audit.append(
      { type: 'risk_event.labelled', actor: l.actor ?? null, subject: l.eventId, reason: l.label.toUpperCase(), data: { source: l.source, strength, labelId: rows[0].id } },
      q,
    );
  }
  return {
    id: rows[0].id,
    label: l.label,
    source: l.source,
    strength,
    actor: l.actor ?? null,
    note: l.note ?? null,
    createdAt: new Date(rows[0].created_at).toISOString(),
  };
}

/** A login completed after a step-up with a factor the user owns: weak evidence it was them. */
export async function labelStepUp(db: Db, eventId: string, factors: readonly string[], at: Date, audit?: Audit): Promise<void> {
  if (!factors.some((f) => OWNED_FACTORS.has(f))) return;
  await addLabel(db, { eventId, label: 'legit', source: 'step_up', at }, audit);
}

/** The labels of an event's login attempt (all events of its flow), oldest first. */
export async function labelsOf(q: Queryable, eventId: string): Promise<(StoredLabel & { eventId: string })[]> {
  const { rows } = await q.query<{ id: string; login_event_id: string; label: RiskLabel; source: LabelSource; strength: 'strong' | 'weak'; actor: string | null; note: string | null; created_at: Date | string }>(
    `SELECT l.id, l.login_event_id, l.label, l.source, l.strength, l.actor, l.note, l.created_at
       FROM login_event_labels l JOIN login_events x ON x.id = l.login_event_id
      WHERE x.id = $1 OR x.flow_id = (SELECT flow_id FROM login_events WHERE id = $1)
      ORDER BY l.created_at, l.id`,
    [eventId],
  );
  return rows.map((r) => ({ id: r.id, eventId: r.login_event_id, label: r.label, source: r.source, strength: r.strength, actor: r.actor, note: r.note, createdAt: new Date(r.created_at).toISOString() }));
}
