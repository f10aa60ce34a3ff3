import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assign, forwardTo, setup } from 'xstate';
import { createFlowRuntime } from '../../src/flows/runtime.ts';
import { AppError } from '../../src/errors.ts';
import type { Db } from '../../src/db/db.ts';
import { TAG_AWAITING_INPUT, TAG_DELEGATING } from '../../machines/types.ts';
import { createTestDb } from '../helpers/db.ts';
import { OffsetClock } from '../helpers/server.ts';

/** A child that counts `tick`s and finishes on `stop`. */
const child = setup({ types: {} as { context: { ticks: number }; events: { type: 'tick' } | { type: 'stop' } } }).createMachine({
  id: 'child',
  context: { ticks: 0 },
  initial: 'waiting',
  states: {
    waiting: {
      tags: [TAG_AWAITING_INPUT],
      on: { tick: { actions: assign({ ticks: ({ context }) => context.ticks + 1 }) }, stop: 'finished' },
    },
    finished: { type: 'final' },
  },
});

/** A parent that delegates to a child it does *not* call `mfa`: the runtime must find it. */
const parent = setup({
  types: {} as { events: { type: 'go' } | { type: 'tick' } | { type: 'stop' } },
  actors: { helper: child },
}).createMachine({
  id: 'parent',
  initial: 'idle',
  states: {
    idle: { tags: [TAG_AWAITING_INPUT], on: { go: 'delegating' } },
    delegating: {
      tags: [TAG_DELEGATING],
      invoke: { id: 'someOtherName', src: 'helper', onDone: 'done' },
      on: { tick: { actions: forwardTo('someOtherName') }, stop: { actions: forwardTo('someOtherName') } },
    },
    done: { type: 'final' },
  },
});

/** A Db that throws once from the first statement matching `failOn` (an injected fault). */
function faultyDb(db: Db) {
  let failOn: RegExp | null = null;
  const wrapped: Db = Object.create(db) as Db;
  wrapped.query = (async (text: string, params?: unknown[]) => {
    if (failOn && failOn.test(text)) {
      failOn = null;
      throw new Error('injected fault');
    }
    return db.query(text, params);
  }) as Db['query'];
  return { db: wrapped, failNext: (re: RegExp) => (failOn = re) };
}

describe('flow runtime', () => {
  let tdb: Awaited<ReturnType<typeof createTestDb>>;
  beforeAll(async () => {
    tdb = await createTestDb();
  });
  afterAll(async () => tdb?.drop());

  const runtimeOn = (db: Db) =>
    createFlowRuntime({ db, clock: new OffsetClock(), type: 'test', machine: parent, machineVersion: 1, ttlSeconds: 600, leaseMs: 30_000 });

  it('a failed save after the lease was claimed gives the lease back: the next attempt works at once', async () => {
    const f = faultyDb(tdb.db);
    const rt = runtimeOn(f.db);
    const row = await rt.create({}, { deviceId: null, ip: null, returnTokens: false });
    f.failNext(/^\s*UPDATE flows SET snapshot/);
    await expect(rt.advance(row.id, { type: 'go' })).rejects.toThrow('injected fault');
    const { rows } = await tdb.db.query<{ lease_until: Date | null }>('SELECT lease_until FROM flows WHERE id = $1', [row.id]);
    expect(rows[0].lease_until).toBeNull();
    // Not FLOW_CONFLICT for the next 30 s: the same event goes through now.
    const next = await rt.advance(row.id, { type: 'go' });
    expect(next.flow.state).toBe('delegating');
  });

  it('an event the flow does not take releases the lease too', async () => {
    const rt = runtimeOn(tdb.db);
    const row = await rt.create({}, { deviceId: null, ip: null, returnTokens: false });
    await expect(rt.advance(row.id, { type: 'tick' })).rejects.toSatisfy((e: unknown) => e instanceof AppError && e.code === 'INVALID_EVENT');
    expect((await rt.advance(row.id, { type: 'go' })).flow.state).toBe('delegating');
  });

  it('finds the delegate whatever its id, forwards to it and rests while it waits', async () => {
    const rt = runtimeOn(tdb.db);
    const row = await rt.create({}, { deviceId: null, ip: null, returnTokens: false });
    await rt.advance(row.id, { type: 'go' });
    const ticked = await rt.advance(row.id, { type: 'tick' });
    expect(ticked.flow.snapshot.children?.someOtherName?.snapshot.context).toEqual({ ticks: 1 });
    // The parent itself has no `tick` transition of its own that would be accepted without the child.
    const done = await rt.advance(row.id, { type: 'stop' });
    expect(done.finished).toBe(true);
    expect(done.flow.state).toBe('done');
  });
});
