import { describe, expect, it } from 'vitest';
import { loadConfig, ConfigError } from '../../src/config/config.ts';
import { Sealer } from '../../src/crypto/seal.ts';
import { randomBytes } from 'node:crypto';

describe('config', () => {
  it('defaults to the embedded mode with no environment', () => {
    const c = loadConfig({});
    expect(c.embedded).toBe(true);
    expect(c.PORT).toBe(3000);
    expect(c.secureCookies).toBe(false);
  });

  it('names the variable that is wrong', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => loadConfig({ LOCKOUT_THRESHOLD: '500' })).toThrow(/LOCKOUT_THRESHOLD/);
    expect(() => loadConfig({ THRESHOLD_MASTER_KEY: 'short' })).toThrow(/THRESHOLD_MASTER_KEY/);
    expect(() => loadConfig({ DATABASE_URL: 'not a url' })).toThrow(ConfigError);
  });

  it('refuses production without a master key', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/THRESHOLD_MASTER_KEY/);
  });

  it('lets PUBLIC_URL follow PORT unless it is set', () => {
    const dflt = loadConfig({});
    expect(dflt.PUBLIC_URL).toBe('http://localhost:3000');
    const moved = loadConfig({ PORT: '8080' });
    expect(moved.PUBLIC_URL).toBe('http://localhost:8080');
    // Everything derived from it moves too: WebAuthn origin and rpID.
    expect(moved.webauthn.origins).toEqual(['http://localhost:8080']);
    expect(moved.webauthn.rpID).toBe('localhost');
    const set = loadConfig({ PORT: '8080', PUBLIC_URL: 'https://auth.example.com' });
    expect(set.PUBLIC_URL).toBe('https://auth.example.com');
    expect(set.webauthn.origins).toEqual(['https://auth.example.com']);
  });

  it('turns on secure cookies for https public URLs', () => {
    expect(loadConfig({ PUBLIC_URL: 'https://auth.example.com' }).secureCookies).toBe(true);
  });
});

describe('sealer', () => {
  const s = new Sealer(randomBytes(32));
  it('round-trips and binds to its aad', () => {
    const sealed = s.seal('JBSWY3DPEHPK3PXP', 'factor-1');
    expect(s.open(sealed, 'factor-1').toString()).toBe('JBSWY3DPEHPK3PXP');
    expect(() => s.open(sealed, 'factor-2')).toThrow();
  });
  it('detects tampering and a wrong key', () => {
    const sealed = s.seal('secret');
    const parts = sealed.split('.');
    parts[2] = Buffer.from('xxxxxx').toString('base64url');
    expect(() => s.open(parts.join('.'))).toThrow();
    expect(() => new Sealer(randomBytes(32)).open(sealed)).toThrow();
  });
});
