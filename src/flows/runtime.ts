import { createActor, type AnyActorRef, type AnyStateMachine, type Snapshot } from 'xstate';
import type { Clock } from '../clock.ts';
import type { Db } from '../db/db.ts';
import type { Logger } from '../logger.ts';
import { randomToken, sha256 } from '../crypto/seal.ts';
import { AppError } from '../errors.ts';
import { TAG_AWAITING_INPUT, TAG_DELEGATING } from '../../machines/types.ts';

export interface FlowRow {
  id: string;
  type: string;
  identity_id: string | null;
  session_id: string | null;
  machine_version: number;
  version: number;
  snapshot: PersistedSnapshot;
  state: string;
  device_id: string | null;
  ip: string | null;
  return_tokens: boolean;
  expires_at: Date;
  created_at: Date;
}

/** The JSON XState persists: value, context, status, output and children's snapshots. */
export interface PersistedSnapshot {
  status: 'active' | 'done' | 'error' | 'stopped';
  value: unknown;
  context: Record<string, unknown>;
  output?: unknown;
  children?: Record<string, { snapshot: PersistedSnapshot; src: string }>;
}

export interface Advanced<E> {
  flow: FlowRow;
  effects: E[];
  /** True only for the one request that moved the flow into a final state. */
  finished: boolean;
}

export interface FlowRuntimeOptions {
  db: Db;
  clock: Clock;
  type: string;
  machine: AnyStateMachine;
  machineVersion: number;
  ttlSeconds: number;
  /** How long one request may hold a flow (risk deadline + hashing fit well inside). */
  leaseMs?: number;
  /** Child actor a delegating state forwards client events to. */
  childId?: string;
  /** Transitions at debug level: event type and states only, never the event's fields. */
  logger?: Pick<Logger, 'debug'>;
}

/** A flow id in logs: enough to follow one flow, not the id itself (it is in URLs). */
const logId = (id: string) => sha256(id).slice(0, 12);

/** Resting: final, awaiting input, or delegating to a child that awaits input. */
export function isResting(actor: AnyActorRef, childId = 'mfa'): boolean {
  const s = actor.getSnapshot();
  if (s.status !== 'active') return true;
  if (s.hasTag(TAG_AWAITING_INPUT)) return true;
  const child = s.children?.[childId] as AnyActorRef | undefined;
  return s.hasTag(TAG_DELEGATING) && !!child && child.getSnapshot().hasTag(TAG_AWAITING_INPUT);
}

/** Whether the resting flow takes this event (asking the child when the parent delegates). */
export function accepts(actor: AnyActorRef, event: { type: string }, childId = 'mfa'): boolean {
  const s = actor.getSnapshot();
  if (s.status !== 'active') return false;
  if (s.hasTag(TAG_DELEGATING)) {
    const child = s.children?.[childId] as AnyActorRef | undefined;
    return !!child && child.getSnapshot().status === 'active' && child.getSnapshot().can(event);
  }
  return s.can(event);
}

export const stateName = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));

/**
 * Start or restore an actor, optionally send one event, and resolve once the whole system
 * (parent and child) rests. Emitted events are collected as effects for the caller to apply.
 */
export function runToRest<E>(
  machine: AnyStateMachine,
  from: { snapshot?: PersistedSnapshot; input?: unknown },
  event: { type: string } | null,
  timeoutMs: number,
  childId = 'mfa',
): Promise<{ snapshot: PersistedSnapshot; effects: E[] }> {
  return new Promise((resolve, reject) => {
    const effects: E[] = [];
    let settled = false;
    let actor: AnyActorRef | undefined;
    const finish = (err?: Error) => {
      if (settled || !actor) return;
      settled = true;
      clearTimeout(timer);
      try {
        const snap = actor.getSnapshot() as Snapshot<unknown> & { status: string };
        if (err) return reject(err);
        if (snap.status === 'error') return reject(new Error('flow machine failed', { cause: (snap as { error?: unknown }).error }));
        resolve({ snapshot: actor.getPersistedSnapshot() as unknown as PersistedSnapshot, effects });
      } finally {
        actor.stop();
      }
    };
    const check = () => {
      if (!settled && actor && isResting(actor, childId)) finish();
    };
    const timer = setTimeout(() => finish(new Error('flow did not come to rest in time')), timeoutMs);
    actor = createActor(machine, {
      ...(from.snapshot ? { snapshot: from.snapshot as never } : { input: from.input }),
      inspect: (ev) => {
        if (ev.type === '@xstate.snapshot') queueMicrotask(check);
      },
    });
    actor.on('*', (e: unknown) => effects.push(e as E));
    actor.subscribe({ error: (e) => finish(e instanceof Error ? e : new Error(String(e))) });
    actor.start();
    if (event) {
      if (!accepts(actor, event, childId)) {
        settled = true;
        clearTimeout(timer);
        actor.stop();
        return reject(new AppError('INVALID_EVENT'));
      }
      actor.send(event);
    }
    queueMicrotask(check);
  });
}

const COLS =
  'id, type, identity_id, session_id, machine_version, version, snapshot, state, device_id, ip, return_tokens, expires_at, created_at';

export function createFlowRuntime(o: FlowRuntimeOptions) {
  const { db, clock } = o;
  const leaseMs = o.leaseMs ?? 30_000;
  const childId = o.childId ?? 'mfa';
  const settleMs = leaseMs - 1000;

  async function load(id: string): Promise<FlowRow> {
    if (!/^flw_[A-Za-z0-9_-]{10,64}$/.test(id)) throw new AppError('FLOW_NOT_FOUND');
    const { rows } = await db.query<FlowRow>(`SELECT ${COLS} FROM flows WHERE id = $1 AND type = $2`, [id, o.type]);
    const row = rows[0];
    if (!row) throw new AppError('FLOW_NOT_FOUND');
    // A flow started under other rules is not resumed by new code: it expires.
    if (row.expires_at.getTime() <= clock.now() || row.machine_version !== o.machineVersion)
      throw new AppError('FLOW_EXPIRED', { extra: { flowRow: row } });
    return row;
  }

  return {
    load,
    async create(input: Record<string, unknown>, meta: { deviceId: string | null; ip: string | null; returnTokens: boolean; identityId?: string | null; sessionId?: string | null }) {
      const id = `flw_${randomToken(16)}`;
      const { snapshot } = await runToRest(o.machine, { input: { ...input, flowId: id } }, null, settleMs, childId);
      const now = clock.now();
      const { rows } = await db.query<FlowRow>(
        `INSERT INTO flows (id, type, identity_id, session_id, machine_version, snapshot, state, device_id, ip, return_tokens,
                            expires_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12, $12) RETURNING ${COLS}`,
        [
          id, o.type, meta.identityId ?? null, meta.sessionId ?? null, o.machineVersion, JSON.stringify(snapshot),
          stateName(snapshot.value), meta.deviceId, meta.ip, meta.returnTokens, new Date(now + o.ttlSeconds * 1000), new Date(now),
        ],
      );
      o.logger?.debug({ flowType: o.type, flow: logId(id), to: rows[0].state }, 'flow created');
      return rows[0];
    },
    /**
     * Apply one event. A lease claimed by compare-and-set admits one request at a time: a
     * concurrent one gets FLOW_CONFLICT before any side effect, and persisting checks the version.
     */
    async advance<E>(id: string, event: { type: string }): Promise<Advanced<E>> {
      const row = await load(id);
      if (row.snapshot.status !== 'active') throw new AppError('INVALID_EVENT', { extra: { flowRow: row } });
      // The lease runs on the database's clock: API processes with skewed clocks still agree.
      const claim = await db.query(
        `UPDATE flows SET lease_until = clock_timestamp() + make_interval(secs => $3::double precision / 1000)
          WHERE id = $1 AND version = $2 AND (lease_until IS NULL OR lease_until <= clock_timestamp())`,
        [id, row.version, leaseMs],
      );
      if (claim.rowCount !== 1) throw new AppError('FLOW_CONFLICT', { extra: { flowRow: row } });
      let result: { snapshot: PersistedSnapshot; effects: E[] };
      try {
        result = await runToRest<E>(o.machine, { snapshot: row.snapshot }, event, settleMs, childId);
      } catch (e) {
        await db.query('UPDATE flows SET lease_until = NULL WHERE id = $1 AND version = $2', [id, row.version]).catch(() => {});
        if (e instanceof AppError) throw new AppError(e.code, { extra: { flowRow: row } });
        throw e;
      }
      const ctx = result.snapshot.context as { identityId?: string | null };
      const { rows } = await db.query<FlowRow>(
        `UPDATE flows SET snapshot = $3::jsonb, state = $4, version = version + 1, lease_until = NULL, updated_at = $5,
                          identity_id = COALESCE(identity_id, $6)
          WHERE id = $1 AND version = $2 RETURNING ${COLS}`,
        [id, row.version, JSON.stringify(result.snapshot), stateName(result.snapshot.value), new Date(clock.now()), ctx.identityId ?? null],
      );
      if (!rows[0]) throw new AppError('FLOW_CONFLICT', { extra: { flowRow: row } });
      o.logger?.debug({ flowType: o.type, flow: logId(id), event: event.type, from: row.state, to: rows[0].state, version: rows[0].version }, 'flow transition');
      return { flow: rows[0], effects: result.effects, finished: result.snapshot.status === 'done' };
    },
  };
}

export type FlowRuntime = ReturnType<typeof createFlowRuntime>;
