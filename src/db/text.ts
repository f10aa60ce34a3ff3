/**
 * What Postgres does with a JavaScript string, in one place. It refuses NUL in text and jsonb,
 * refuses `\uD800`-style escapes in jsonb, and stores a lone UTF-16 surrogate sent as text as
 * U+FFFD (the driver encodes UTF-8), on PG 15 and PGlite alike: such a string is not stored as
 * given. In a well-formed string (no NUL, surrogates only in pairs) what is stored is what was sent.
 */
const UNSTORABLE = /[\u0000\p{Cs}]/u;
const UNSTORABLE_ALL = /[\u0000\p{Cs}]/gu;

/** True when Postgres stores the string exactly as given. */
export const isStorableText = (s: string): boolean => !UNSTORABLE.test(s);

/** The string as it can be stored: NUL and lone surrogates become U+FFFD (what PG does to the latter). */
export const storableText = (s: string): string => s.replace(UNSTORABLE_ALL, '\uFFFD');
