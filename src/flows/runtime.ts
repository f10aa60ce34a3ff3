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
  /** Transitions at debug level: event type and states only, never the event's fields. */
  logger?: Pick<Logger, 'debug'>;
}

/**
 * The child a delegating state forwards client events to, found rather than named: the invoked
 * actor that is itself a state machine (it has tags), so a parent may call its child anything.
 */
export function delegateOf(actor: AnyActorRef): AnyActorRef | undefined {
  const s = actor.getSnapshot();
  if (s.status !== 'active' || !s.hasTag(TAG_DELEGATING)) return undefined;
  for (const child of Object.values((s.children ?? {}) as Record<string, AnyActorRef | undefined>)) {
    const cs = child?.getSnapshot() as { hasTag?: unknown } | undefined;
    if (cs && typeof cs.hasTag === 'function') return child;
  }
  return undefined;
}

/** The persisted snapshot of a flow's delegate, if it has one (a machine child: it has a value). */
export function delegateSnapshot(snap: PersistedSnapshot): { snapshot: PersistedSnapshot; src: string } | undefined {
  if (snap.status !== 'active') return undefined;
  return Object.values(snap.children ?? {}).find((c) => c?.snapshot && 'value' in c.snapshot);
}

/** A flow id in logs: enough to follow one flow, not the id itself (it is in URLs). */
const logId = (id: string) => sha256(id).slice(0, 12);

/** Resting: final, awaiting input, or delegating to a child that awaits input. */
export function isResting(actor: AnyActorRef): boolean {
  const s = actor.getSnapshot();
  if (s.status !== 'active') return true;
  if (s.hasTag(TAG_AWAITING_INPUT)) return true;
  return !!delegateOf(actor)?.getSnapshot().hasTag(TAG_AWAITING_INPUT);
}

/** Whether the resting flow takes this event (asking the child when the parent delegates). */
export function accepts(actor: AnyActorRef, event: { type: string }): boolean {
  const s = actor.getSnapshot();
  if (s.status !== 'active') return false;
  if (s.hasTag(TAG_DELEGATING)) {
    const child = delegateOf(actor);
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
      if (!settled && actor && isResting(actor)) finish();
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
      if (!accepts(actor, event)) {
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
      const { snapshot } = await runToRest(o.machine, { input: { ...input, flowId: id } }, null, settleMs);
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
    /** `loaded`: the row the caller just loaded for this request (binding check), not read again. */
    async advance<E>(id: string, event: { type: string }, loaded?: FlowRow): Promise<Advanced<E>> {
      const row = loaded && loaded.id === id ? loaded : await load(id);
      if (row.snapshot.status !== 'active') throw new AppError('INVALID_EVENT', { extra: { flowRow: row } });
      // The lease runs on the database's clock: API processes with skewed clocks still agree.
      const claim = await db.query(
        `UPDATE flows SET lease_until = clock_timestamp() + make_interval(secs => $3::double precision / 1000)
          WHERE id = $1 AND version = $2 AND (lease_until IS NULL OR lease_until <= clock_timestamp())`,
        [id, row.version, leaseMs],
      );
      if (claim.rowCount !== 1) throw new AppError('FLOW_CONFLICT', { extra: { flowRow: row } });
      // From here every error path gives the lease back: a failed save, a machine that threw or did
      // not settle must not answer the user's next attempt with 409 until the lease runs out.
      const release = () =>
        db.query('UPDATE flows SET lease_until = NULL WHERE id = $1 AND version = $2', [id, row.version]).then(
          () => undefined,
          () => undefined,
        );
      try {
        const result = await runToRest<E>(o.machine, { snapshot: row.snapshot }, event, settleMs);
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
      } catch (e) {
        await release();
        if (e instanceof AppError) throw new AppError(e.code, { extra: { ...e.extra, flowRow: row } });
        throw e;
      }
    },
    /**
     * A finished flow whose decision could not be carried out (the session cap refused the
     * session the flow allowed) is rewritten to read as the final state that did happen, with
     * `patch` merged into its context and output. Only a finished flow: nothing resumes it.
     */
    async overrideOutcome(row: FlowRow, finalState: string, patch: Record<string, unknown>): Promise<FlowRow> {
      if (row.snapshot.status !== 'done') throw new Error('only a finished flow can be overridden');
      const snapshot: PersistedSnapshot = {
        ...row.snapshot,
        value: finalState,
        context: { ...row.snapshot.context, ...patch },
        output: { ...(row.snapshot.output as Record<string, unknown> | undefined), ...patch },
      };
      const { rows } = await db.query<FlowRow>(
        `UPDATE flows SET snapshot = $3::jsonb, state = $4, version = version + 1, updated_at = $5
          WHERE id = $1 AND version = $2 RETURNING ${COLS}`,
        [row.id, row.version, JSON.stringify(snapshot), finalState, new Date(clock.now())],
      );
      if (!rows[0]) throw new AppError('FLOW_CONFLICT');
      return rows[0];
    },
  };
}

export type FlowRuntime = ReturnType<typeof createFlowRuntime>;
