import { describe, expect, it } from 'vitest';
import { evaluateSession } from '../../src/session/lifecycle.ts';
import type { SessionContext } from '../../machines/session.machine.ts';

const MIN = 60_000;
const start = 1_000_000_000_000;
const ctx = (over: Partial<SessionContext> = {}): SessionContext => ({
  idleMs: 30 * MIN,
  warningMs: 5 * MIN,
  lastSeenAt: start,
  idleExpiresAt: start + 30 * MIN,
  absoluteExpiresAt: start + 12 * 60 * MIN,
  reason: null,
  ...over,
});

describe('session lifecycle machine', () => {
  it('slides the idle window on activity, never past the absolute expiry', () => {
    const r = evaluateSession('active', ctx(), { type: 'ACTIVITY', at: start + 10 * MIN });
    expect(r.state).toBe('active');
    expect(r.ctx.idleExpiresAt).toBe(start + 40 * MIN);
    const late = evaluateSession('active', ctx({ idleExpiresAt: start + 12 * 60 * MIN - MIN }), { type: 'ACTIVITY', at: start + 12 * 60 * MIN - 2 * MIN });
    expect(late.ctx.idleExpiresAt).toBe(start + 12 * 60 * MIN);
    expect(late.state).toBe('warning'); // only the absolute expiry is near: activity cannot clear it
  });

  it('activity every 10 minutes still ends the session at the absolute lifetime', () => {
    let s = { state: 'active' as const as ReturnType<typeof evaluateSession>['state'], ctx: ctx() };
    let t = start;
    const states = new Set<string>();
    while (s.state !== 'expired') {
      t += 10 * MIN;
      s = evaluateSession(s.state, s.ctx, { type: 'ACTIVITY', at: t });
      states.add(s.state);
    }
    expect(t).toBe(start + 12 * 60 * MIN);
    expect(states).toEqual(new Set(['active', 'expired']));
    // Activity 2 minutes before the absolute end lands in the warning window and cannot leave it.
    const near = evaluateSession('active', ctx({ idleExpiresAt: start + 12 * 60 * MIN - 3 * MIN }), { type: 'ACTIVITY', at: start + 12 * 60 * MIN - 4 * MIN });
    expect(near.state).toBe('warning');
  });

  it('shows the warning when a check falls inside the window, and activity clears it', () => {
    const w = evaluateSession('active', ctx(), { type: 'CHECK', at: start + 26 * MIN });
    expect(w.state).toBe('warning');
    expect(w.ctx.idleExpiresAt).toBe(start + 30 * MIN); // a check does not slide
    const cleared = evaluateSession(w.state, w.ctx, { type: 'ACTIVITY', at: start + 27 * MIN });
    expect(cleared.state).toBe('active');
    expect(cleared.ctx.idleExpiresAt).toBe(start + 57 * MIN);
    expect(evaluateSession('active', ctx(), { type: 'CHECK', at: start + 24 * MIN }).state).toBe('active');
  });

  it('expires at the idle deadline without activity', () => {
    expect(evaluateSession('warning', ctx(), { type: 'CHECK', at: start + 30 * MIN }).state).toBe('expired');
    expect(evaluateSession('active', ctx(), { type: 'ACTIVITY', at: start + 31 * MIN }).state).toBe('expired');
  });

  it('revokes from any live state, with the reason', () => {
    for (const s of ['active', 'warning', 'locked'] as const) {
      const r = evaluateSession(s, ctx(), { type: 'REVOKE', reason: 'logout' });
      expect(r.state).toBe('revoked');
      expect(r.ctx.reason).toBe('logout');
    }
  });

  it('locks on a security event; activity does not unlock; an admin unlock returns it to active', () => {
    const l = evaluateSession('active', ctx(), { type: 'LOCK', reason: 'refresh_reuse' });
    expect(l.state).toBe('locked');
    expect(evaluateSession('locked', l.ctx, { type: 'ACTIVITY', at: start + MIN }).state).toBe('locked');
    const u = evaluateSession('locked', l.ctx, { type: 'UNLOCK', at: start + 2 * MIN });
    expect(u.state).toBe('active');
    expect(u.ctx.reason).toBeNull();
    expect(evaluateSession('locked', l.ctx, { type: 'UNLOCK', at: start + 13 * 60 * MIN }).state).toBe('expired');
  });

  it('ignores events that finished sessions do not take', () => {
    expect(evaluateSession('expired', ctx(), { type: 'ACTIVITY', at: start }).state).toBe('expired');
    expect(evaluateSession('revoked', ctx(), { type: 'UNLOCK', at: start }).state).toBe('revoked');
  });
});
