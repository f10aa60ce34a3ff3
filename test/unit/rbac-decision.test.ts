import { describe, expect, it } from 'vitest';
import { checkRequirement, decisionError, type Principal } from '../../src/rbac/rbac.ts';
import { ACR } from '../../machines/types.ts';

const p: Principal = { identityId: 'u1', sessionId: 's1', amr: ['pwd'], authTime: 1000, factorTimes: { pwd: 1000 } };

describe('decisionError: one refused-requirement answer for every route', () => {
  it('a missing factor: 401 STEP_UP_REQUIRED with the RFC 9470 challenge and what to step up to', () => {
    const d = checkRequirement(p, { amr: ['mfa'], maxAge: 900 }, 1100);
    if (d.allow) throw new Error('expected a refusal');
    const e = decisionError(d);
    expect(e.code).toBe('STEP_UP_REQUIRED');
    expect(e.status).toBe(401);
    expect(e.headers?.['WWW-Authenticate']).toBe(
      `Bearer error="insufficient_user_authentication", error_description="Requires mfa", acr_values="${ACR.aal2}", max_age=900`,
    );
    expect(e.extra).toEqual({ acr_values: ACR.aal2, max_age: 900 });
  });

  it('no max_age when the requirement has none; PERMISSION_DENIED carries no challenge', () => {
    const d = checkRequirement(p, { amr: ['hwk'] }, 1100);
    if (d.allow) throw new Error('expected a refusal');
    expect(decisionError(d).extra).toEqual({ acr_values: ACR.aal2 });
    const denied = decisionError({ allow: false, code: 'PERMISSION_DENIED' });
    expect(denied.status).toBe(403);
    expect(denied.headers).toBeUndefined();
  });
});
