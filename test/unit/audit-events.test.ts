import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { AUDIT_EVENT_TYPES } from '../../contracts/audit-events.ts';

const CONTRACTS = fileURLToPath(new URL('../../contracts/', import.meta.url));

describe('contracts/audit-events.ts', () => {
  it('names every type <noun>.<past-verb>, once', () => {
    expect(new Set(AUDIT_EVENT_TYPES).size).toBe(AUDIT_EVENT_TYPES.length);
    for (const t of AUDIT_EVENT_TYPES) {
      expect(t).toMatch(/^[a-z][a-z_]*\.[a-z][a-z_]*$/);
      // The part after the dot holds a past participle (`failed`, `stepped_up`, `code_sent`, `reported_fraudulent`).
      expect(t.split('.')[1].split('_').some((w) => w.endsWith('ed') || w === 'sent'), t).toBe(true);
    }
  });

  it('has no synonyms for second-factor changes (WebAuthn is a factor like any other)', () => {
    expect(AUDIT_EVENT_TYPES.filter((t) => t.startsWith('webauthn.'))).toEqual(['webauthn.clone_suspected']);
    expect(AUDIT_EVENT_TYPES.filter((t) => t.includes('recovery_codes'))).toEqual(['recovery_codes.generated']);
  });

  it('imports nothing from src/ (contracts are imported by src/ and workers/, never the reverse)', () => {
    for (const f of readdirSync(CONTRACTS).filter((n) => n.endsWith('.ts'))) {
      const imports = [...readFileSync(CONTRACTS + f, 'utf8').matchAll(/from\s+'([^']+)'/g)].map((m) => m[1]);
      expect(imports.filter((i) => i.includes('/src/') || i.startsWith('../src')), f).toEqual([]);
    }
  });
});
