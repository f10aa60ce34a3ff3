import type { Context } from 'hono';
import { AppError } from '../errors.ts';
import { hasConflictingCredentials, type AnyPrincipal, type Authenticator, type AuthMode } from './types.ts';

/**
 * `authenticate` as an ordered list: each authenticator answers a principal or nothing, the
 * first principal wins, and a request none of them accepts is unauthenticated. The default list
 * (src/principals/index.ts): session cookie, bearer access token, API key — and the slot where
 * a service-account authenticator registers (`register`, before or after a named one).
 *
 * The answer is kept on the request (`principal`), so a route that asks twice pays once.
 */
export interface PrincipalPipeline {
  authenticate(c: Context, mode?: AuthMode): Promise<AnyPrincipal | null>;
  /** Whether any authenticator found a credential in the request (401 says `invalid_token` then). */
  presented(c: Context): boolean;
  /** Add an authenticator (default: last). Names are unique. */
  register(a: Authenticator, at?: { before?: string; after?: string }): void;
  readonly names: readonly string[];
  readonly authenticators: readonly Authenticator[];
}

export function createPrincipalPipeline(initial: readonly Authenticator[]): PrincipalPipeline {
  const list: Authenticator[] = [];
  const register = (a: Authenticator, at: { before?: string; after?: string } = {}) => {
    if (list.some((x) => x.name === a.name)) throw new Error(`authenticator ${a.name} is already registered`);
    const anchor = at.before ?? at.after;
    if (anchor === undefined) return void list.push(a);
    const i = list.findIndex((x) => x.name === anchor);
    if (i < 0) throw new Error(`no authenticator named ${anchor}`);
    list.splice(at.before !== undefined ? i : i + 1, 0, a);
  };
  for (const a of initial) register(a);
  return {
    async authenticate(c, mode = 'activity') {
      const cached = c.get('principal' as never) as AnyPrincipal | undefined;
      if (cached) return cached;
      if (hasConflictingCredentials(c)) throw new AppError('CREDENTIALS_CONFLICT');
      for (const a of list) {
        const p = await a.authenticate(c, mode);
        if (p) {
          c.set('principal' as never, p as never);
          c.set('via' as never, p.via as never);
          return p;
        }
      }
      return null;
    },
    presented: (c) => list.some((a) => a.presented(c)),
    register,
    get names() {
      return list.map((a) => a.name);
    },
    get authenticators() {
      return [...list];
    },
  };
}
