import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/config.ts';

/** The README's configuration table names exactly the variables the schema reads, no more, no fewer. */
describe('README configuration table', () => {
  it('lists every variable of src/config/config.ts and no other', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const start = readme.indexOf('\n## Configuration\n');
    expect(start).toBeGreaterThan(0);
    const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
    // The first column of each table row; a row may name several variables.
    const documented = new Set<string>();
    for (const line of section.split('\n')) {
      const first = /^\| ([^|]+) \|/.exec(line)?.[1];
      for (const m of first?.matchAll(/`([A-Z][A-Z0-9_]+)`/g) ?? []) documented.add(m[1]);
    }
    const schema = new Set(Object.keys(ConfigSchema.shape));
    expect([...schema].filter((k) => !documented.has(k)).sort()).toEqual([]);
    expect([...documented].filter((k) => !schema.has(k)).sort()).toEqual([]);
  });
});
