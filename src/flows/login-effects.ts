import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import type { Audit, AuditEvent } from '../audit/audit.ts';
import type { FlowEffect, RiskOutcome } from '../../machines/types.ts';
import type { FlowRow } from './runtime.ts';
import { deviceRef } from './binding.ts';
import type { RiskRecorder } from '../risk/recorder.ts';
import { deviceNewSql, RISK_EVENT_COLUMNS, riskEventColumns } from '../risk/event-columns.ts';
import { countLogin, countRiskDecision } from '../metrics/metrics.ts';

/** login_events.outcome. Risk history trusts `succeeded` only: it is written once a session exists. */
export type LoginEventOutcome = 'succeeded' | 'failed' | 'denied' | 'locked' | 'stepped_up';

/**
 * Applies what a login transition asked for, after the flow was persisted: one login event per
 * outcome (with the risk decision's signals, policy version and contributions, so it can be
 * explained and replayed) and one audit event each.
 */
export function createLoginEffects(deps: { db: Db; clock: Clock; audit: Audit; risk?: RiskRecorder }) {
  const { db, clock, audit } = deps;

  async function loginEvent(flow: FlowRow, outcome: LoginEventOutcome, identityId: string | null, risk: RiskOutcome | null, extra: { factors?: string[]; reason?: string; sessionId?: string } = {}) {
    // Risk history columns (issue 8, src/risk/event-columns.ts): $18-$23; device_new (an established
    // account on a device it never succeeded from, or an unknown identifier) is decided here,
    // before this row exists — the same rule as MemoryRiskHistory.isDeviceNew.
    countLogin(outcome, extra.factors);
    const ua = (flow.snapshot?.context as { userAgent?: string | null } | undefined)?.userAgent;
    // With `sessionId` (a success), the flow learns its session in the same statement.
    await db.query(
      `WITH flow_session AS (UPDATE flows SET session_id = $24::uuid WHERE id = $2 AND $24::uuid IS NOT NULL)
       INSERT INTO login_events (id, flow_id, identity_id, device_id, ip, country, latitude, longitude, outcome, signals,
                                 policy_version, contributions, score, decision, reasons, factors, created_at,
                                 ${RISK_EVENT_COLUMNS.join(', ')}, device_new)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12::jsonb, $13, $14, $15::jsonb, $16::jsonb, $17,
               $18, $19, $20, $21, $22, $23,
               ${deviceNewSql('$3', '$4')})`,
      [
        randomUUID(), flow.id, identityId, flow.device_id, flow.ip, risk?.country ?? null, risk?.lat ?? null, risk?.lon ?? null,
        outcome, risk ? JSON.stringify(risk.signals ?? null) : null, risk?.policyVersion ?? null,
        risk ? JSON.stringify(risk.contributions) : null, risk?.score ?? null, risk?.decision ?? null,
        JSON.stringify(extra.reason ? [...(risk?.reasons ?? []), extra.reason] : (risk?.reasons ?? [])),
        JSON.stringify(extra.factors ?? []), new Date(clock.now()),
        ...riskEventColumns(flow.ip, risk?.signals, ua),
        extra.sessionId ?? null,
      ],
    );
    // The shadow policy's decision beside this one, and a step-up label (src/risk/recorder.ts).
    await deps.risk?.recorded(flow.id, outcome, risk, { identityId, deviceId: flow.device_id });
  }

  /**
   * Records a transition's effects: login events as they come, and its audit events together at
   * the end (one group commit). With `deferAudit`, the audit events are handed back instead, for
   * the caller to write with what follows in the same request (a login's completion).
   */
  async function apply(flow: FlowRow, effects: FlowEffect[], risk: RiskOutcome | null, opts: { deferAudit?: boolean } = {}): Promise<AuditEvent[]> {
    const audits: AuditEvent[] = [];
    // The device id is a bearer secret (X-Device-Id): the audit trail keeps a digest only.
    const base = { flow: flow.id, device: deviceRef(flow.device_id) };
    for (const e of effects) {
      switch (e.type) {
        case 'login.failed':
          await loginEvent(flow, 'failed', e.identityId, null, { reason: e.reason, factors: [e.factor] });
          audits.push({ type: 'login.failed', subject: e.identityId, reason: e.reason, data: { ...base, factor: e.factor } });
          break;
        case 'login.locked':
          await loginEvent(flow, 'locked', e.identityId, risk, { reason: e.reason });
          audits.push({ type: 'login.locked', subject: e.identityId, reason: e.reason, data: base });
          break;
        case 'risk.decided':
          countRiskDecision(e.risk);
          audits.push({
            type: 'risk.decided',
            subject: e.identityId,
            reason: e.risk.reasons.join(' ') || 'NONE',
            data: { ...base, decision: e.risk.decision, score: e.risk.score, policyVersion: e.risk.policyVersion, contributions: e.risk.contributions },
          });
          break;
        case 'login.stepped_up':
          await loginEvent(flow, 'stepped_up', e.identityId, risk);
          audits.push({ type: 'login.stepped_up', subject: e.identityId, reason: e.reasons.join(' ') || 'NONE', data: base });
          break;
        case 'login.denied':
          await loginEvent(flow, 'denied', e.identityId, risk, { reason: e.reason });
          audits.push({ type: 'login.denied', subject: e.identityId, reason: e.reason, data: base });
          break;
        case 'login.allowed':
          // Not a success yet: the login service's completion decides the session first, then
          // records `succeeded` (or the refusal) itself.
          break;
        case 'mfa.challenge_failed':
          audits.push({ type: 'mfa.challenge_failed', subject: e.identityId, reason: 'MFA_CODE_INVALID', data: { ...base, method: e.method, attempts: e.attempts } });
          break;
        case 'mfa.locked':
          await loginEvent(flow, 'locked', e.identityId, risk, { reason: 'MFA_LOCKED', factors: [e.method] });
          audits.push({ type: 'mfa.locked', subject: e.identityId, reason: 'MFA_LOCKED', data: { ...base, method: e.method } });
          break;
      }
    }
    if (opts.deferAudit) return audits;
    await audit.appendMany(audits);
    return [];
  }

  return { apply, loginEvent };
}
