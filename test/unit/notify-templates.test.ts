import { describe, expect, it } from 'vitest';
import { escapeHtml, render, TemplateDataError } from '../../src/notify/templates.ts';

describe('notify templates', () => {
  it('renders login_code for SMS, plain text and HTML', () => {
    const m = render('login_code', { code: '123456' });
    expect(m.sms).toBe('Your Threshold code is 123456. It expires in 10 minutes.');
    expect(m.text).toContain('Your Threshold code is 123456.');
    expect(m.html).toContain('<strong>123456</strong>');
    expect(m.subject).not.toContain('123456');
    expect(render('login_code', { code: '00012345', ttlMinutes: '5' }).sms).toBe('Your Threshold code is 00012345. It expires in 5 minutes.');
  });

  it('HTML-escapes every interpolated value', () => {
    const m = render('new_device', {
      device: '<img src=x onerror=alert(1)> "Chrome" & \'Co\'',
      location: '<b>Paris</b>',
      revokeUrl: 'https://id.example.test/revoke?t=a&b="c"',
    });
    expect(m.html).not.toMatch(/<img|<b>/);
    expect(m.html).toContain('&lt;img src=x onerror=alert(1)&gt; &quot;Chrome&quot; &amp; &#39;Co&#39;');
    expect(m.html).toContain('&lt;b&gt;Paris&lt;/b&gt;');
    expect(m.html).toContain('href="https://id.example.test/revoke?t=a&amp;b=&quot;c&quot;"');
    // The plain-text body and SMS carry the values as they are.
    expect(m.text).toContain('https://id.example.test/revoke?t=a&b="c"');
    expect(m.sms).toContain('Not you? https://id.example.test/revoke');
  });

  it('puts the "this wasn\'t me" link in new_device and factor_changed messages', () => {
    const n = render('new_device', { device: 'Firefox on Linux', revokeUrl: 'https://id.example.test/r/abc' });
    expect(n.html).toContain(`<a href="https://id.example.test/r/abc">This wasn't me</a>`);
    expect(n.text).toContain('https://id.example.test/r/abc');
    const f = render('factor_changed', { factor: 'Authenticator app', action: 'removed', reviewUrl: 'https://id.example.test/security' });
    expect(f.text).toContain('was removed: Authenticator app');
    expect(f.html).toContain('href="https://id.example.test/security"');
  });

  it.each([
    ['login_code', { code: '12345' }],
    ['login_code', { code: '12345a' }],
    ['login_code', {}],
    ['new_device', { device: 'x', revokeUrl: 'javascript:alert(1)' }],
    ['new_device', { device: 'x', revokeUrl: 'not a url' }],
    ['new_device', { device: 'x' }],
    ['new_device', { device: 'two\nlines', revokeUrl: 'https://x.test/' }],
    ['factor_changed', { factor: 'TOTP', action: '<script>' }],
  ] as const)('refuses data that does not fit %s: %j', (template, data) => {
    expect(() => render(template, data as Record<string, string>)).toThrow(TemplateDataError);
  });

  it('escapes the five HTML-significant characters', () => {
    expect(escapeHtml(`<>&"'`)).toBe('&lt;&gt;&amp;&quot;&#39;');
  });
});
