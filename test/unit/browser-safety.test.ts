import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { isAppError } from '../../src/errors.ts';
import { csrfProtection, judgeSource } from '../../src/http/middleware/csrf.ts';
import { noFraming } from '../../src/http/middleware/frames.ts';
import { bindingFailure, deviceRef } from '../../src/flows/binding.ts';
import { pino } from 'pino';
import { REDACT_PATHS } from '../../src/logger.ts';

describe('csrfProtection options (checked once, at creation)', () => {
  it.each([
    ['a path', 'https://id.example/login'],
    ['a trailing slash', 'https://id.example/'],
    ['another scheme', 'ftp://id.example'],
    ['not a URL', 'id.example'],
    ['upper case (browsers send lower case)', 'https://ID.example'],
  ])('refuses an allowed origin with %s', (_what, origin) => {
    expect(() => csrfProtection({ allowedOrigins: [origin] })).toThrow(/csrf: allowed origin/);
  });

  it('refuses an empty origin list and unanchored path patterns', () => {
    expect(() => csrfProtection({ allowedOrigins: [] })).toThrow(/at least one/);
    expect(() => csrfProtection({ allowedOrigins: ['https://id.example'], skip: [/\/auth\/token/] })).toThrow(/anchored/);
    expect(() => csrfProtection({ allowedOrigins: ['https://id.example'], forms: [/^\/auth\/report\/.+$/g] })).toThrow(/anchored/);
  });
});

describe('csrfProtection refusals', () => {
  it('logs no report token or flow id', async () => {
    const seen: unknown[] = [];
    const app = new Hono();
    app.onError((e, c) => c.json({ code: isAppError(e) ? e.code : 'INTERNAL' }, isAppError(e) ? (e.status as 403) : 500));
    app.use('*', csrfProtection({ allowedOrigins: ['https://id.example'], forms: [/^\/auth\/report\/[^/]+$/], onRefused: (i) => seen.push(i) }));
    app.post('*', (c) => c.text('acted'));
    const token = 'tok_0123456789abcdefghijKLMNOP';
    const r = await app.request(`/auth/report/${token}`, { method: 'POST', headers: { origin: 'https://evil.example' } });
    expect(r.status).toBe(403);
    expect(await r.json()).toEqual({ code: 'CROSS_SITE_REQUEST' });
    expect(seen).toEqual([{ reason: 'ORIGIN', method: 'POST', path: '/auth/report/…', origin: 'https://evil.example', site: null }]);
    expect(JSON.stringify(seen)).not.toContain(token);
    // The same path from the page itself acts, form body and all.
    const ok = await app.request(`/auth/report/${token}`, { method: 'POST', headers: { origin: 'https://id.example', 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    expect(await ok.text()).toBe('acted');
  });
});

describe('judgeSource', () => {
  const allowed = new Set(['https://id.example', 'https://app.example']);
  it.each([
    ['same-origin', undefined, null],
    ['same-origin', 'null', null], // Referrer-Policy: no-referrer on our own page
    ['none', undefined, null],
    ['same-site', 'https://evil.example', 'SEC_FETCH_SITE'],
    ['same-site', 'https://app.example', null], // a configured sibling (e.g. a WebAuthn origin)
    ['cross-site', 'https://evil.test', 'SEC_FETCH_SITE'],
    ['cross-site', undefined, 'SEC_FETCH_SITE'],
    ['Cross-Site', 'null', 'SEC_FETCH_SITE'],
    ['something-new', undefined, 'SEC_FETCH_SITE'],
    [undefined, 'https://id.example', null],
    [undefined, 'https://evil.example', 'ORIGIN'],
    [undefined, 'https://id.example.evil.test', 'ORIGIN'],
    [undefined, 'null', 'ORIGIN'],
    [undefined, undefined, null], // not a browser: curl, native apps
  ])('Sec-Fetch-Site %s, Origin %s → %s', (site, origin, verdict) => {
    expect(judgeSource(site, origin, allowed)).toBe(verdict);
  });
});

describe('flow binding', () => {
  const row = { device_id: 'device-a-0123456789abcdef', session_id: 'sess-1' };
  it('is bound to the device, and for step-up also the session', () => {
    expect(bindingFailure(row, { deviceId: 'device-a-0123456789abcdef' })).toBeNull();
    expect(bindingFailure(row, { deviceId: 'device-b-0123456789abcdef' })).toBe('OTHER_DEVICE');
    expect(bindingFailure(row, { deviceId: 'device-a-0123456789abcde' })).toBe('OTHER_DEVICE');
    expect(bindingFailure(row, { deviceId: null })).toBe('OTHER_DEVICE');
    expect(bindingFailure(row, { deviceId: 'device-a-0123456789abcdef', sessionId: 'sess-2' })).toBe('OTHER_SESSION');
    expect(bindingFailure({ device_id: null, session_id: null }, { deviceId: 'x'.repeat(20) })).toBe('OTHER_DEVICE');
    expect(bindingFailure({ device_id: null, session_id: null }, { deviceId: null })).toBeNull();
  });

  it('keeps device ids out of logs', () => {
    const lines: string[] = [];
    const log = pino({ redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, { write: (l: string) => lines.push(l) });
    log.warn({ deviceId: 'device-a-0123456789abcdef', job: { deviceId: 'device-a-0123456789abcdef' }, flow: { device_id: 'device-a-0123456789abcdef' }, req: { headers: { 'x-device-id': 'device-a-0123456789abcdef' } } }, 'x');
    expect(lines.join('')).not.toContain('0123456789abcdef');
  });

  it('refers to a device without revealing it', () => {
    const ref = deviceRef('device-a-0123456789abcdef')!;
    expect(ref).not.toContain('0123456789abcdef');
    expect(ref).toBe(deviceRef('device-a-0123456789abcdef'));
    expect(deviceRef(null)).toBeNull();
  });
});

describe('noFraming', () => {
  const app = new Hono();
  app.onError((_e, c) => c.text('failed', 500));
  app.use('*', noFraming());
  app.get('/json', (c) => c.json({ ok: true }));
  app.get('/page', (c) => c.html('<p>hi</p>', 200, { 'Content-Security-Policy': "default-src 'none'" }));
  app.get('/own', (c) => c.html('<p>hi</p>', 200, { 'Content-Security-Policy': "default-src 'none'; frame-ancestors 'self'" }));
  // Response.redirect() has immutable headers.
  app.get('/redirect', () => Response.redirect('https://id.example/next', 302));
  app.get('/boom', () => {
    throw new Error('boom');
  });

  it.each([
    ['/json', "frame-ancestors 'none'"],
    ['/page', "default-src 'none'; frame-ancestors 'none'"],
    ['/own', "default-src 'none'; frame-ancestors 'self'"], // a route that chose its own ancestors keeps them
    ['/redirect', "frame-ancestors 'none'"],
    ['/boom', "frame-ancestors 'none'"],
    ['/missing', "frame-ancestors 'none'"],
  ])('%s → X-Frame-Options: DENY and CSP %s', async (path, csp) => {
    const r = await app.request(path);
    expect(r.headers.get('x-frame-options')).toBe('DENY');
    expect(r.headers.get('content-security-policy')).toBe(csp);
  });
});
