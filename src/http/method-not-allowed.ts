import type { Hono, Env as HonoEnv } from 'hono';
import { inspectRoutes } from 'hono/dev';
import { TrieRouter } from 'hono/router/trie-router';

/**
 * For a request no route answered: the methods the app does answer on that path (`Allow`), or
 * null when no route has the path (a plain 404). Built from the app's own route table on first use,
 * after every route is registered, so a route added anywhere is covered without being listed here.
 * Middleware-only entries (`app.use`, a limiter in front of a route) do not make a path exist.
 */
export function allowedMethods<E extends HonoEnv>(app: Hono<E>): (path: string) => string[] | null {
  let table: { router: TrieRouter<true>; methods: string[] } | null = null;
  const build = () => {
    const router = new TrieRouter<true>();
    const methods = new Set<string>();
    for (const r of inspectRoutes(app)) {
      if (r.isMiddleware) continue;
      router.add(r.method, r.path, true);
      methods.add(r.method);
    }
    return { router, methods: [...methods].sort() };
  };
  return (path) => {
    table ??= build();
    const { router, methods } = table;
    const allow = methods.filter((m) => router.match(m, path)[0].length > 0);
    if (!allow.length) return null;
    // Hono answers HEAD with the GET route.
    if (allow.includes('GET')) allow.push('HEAD');
    return allow.sort();
  };
}
