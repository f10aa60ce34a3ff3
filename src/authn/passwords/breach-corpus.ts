import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { contains, deserialise, wordsOf, type FuseFilter, type SerialisedFilter } from './fuse-filter.ts';

/**
 * The offline breach corpus: 488 130 passwords of 8+ characters from SecLists' top million of the
 * 10-million-password corpus, as a binary fuse filter (~1.1 MB, false positives 2^-16; see
 * BREACHED-PASSWORDS.md). Loaded once, on first use.
 */
let filter: FuseFilter | null = null;

export function breachFilter(): FuseFilter {
  filter ??= deserialise(JSON.parse(readFileSync(new URL('./breached-passwords.json', import.meta.url), 'utf8')) as SerialisedFilter);
  return filter;
}

/** The SHA-1 digest (upper-case hex) a password is known by, here and in the range API. */
export const sha1Hex = (password: string): string => createHash('sha1').update(password, 'utf8').digest('hex').toUpperCase();

/** Stops a password from a public breach list being set: exact (case-sensitive) membership. */
export function inBreachCorpus(sha1: string): boolean {
  return contains(breachFilter(), wordsOf(Buffer.from(sha1, 'hex')));
}
