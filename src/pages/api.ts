import type { Context } from 'hono';
import type { Env } from '../http/services.ts';

/** What the flow API answered to a page: status, parsed JSON body (null when empty). */
export interface ApiAnswer {
  status: number;
  body: any;
  headers: Headers;
}

/** The request headers a page passes on to the API: the browser's own, so every API rule judges the same request. */
const FORWARDED = ['cookie', 'user-agent', 'origin', 'sec-fetch-site', 'x-forwarded-for', 'accept-language'];

/**
 * A cookie the API scopes to its login routes (the remembered-device token, Path=/auth/login) is
 * scoped to the sign-in pages instead when a page obtained it: the browser then sends it to
 * POST /login, which passes it on to POST /auth/login. Still one path, never wider.
 */
const pagePath = (setCookie: string) => setCookie.replace(/;\s*Path=\/auth\/login(?=;|$)/i, '; Path=/login');

export type Api = (c: Context<Env>, method: string, path: string, body?: unknown) => Promise<ApiAnswer>;

/**
 * The pages are a client of the HTTP API, called in-process: the same routes, middleware (CSRF,
 * rate limits, flow binding) and presenters as for any client, so no rule is implemented twice.
 * The socket (`c.env`) is passed along, so the API sees the same client address. Cookies the API
 * sets (session, device) are copied onto the page's answer.
 */
export function inProcessApi(fetchApp: (req: Request, env: unknown) => Response | Promise<Response>): Api {
  return async (c, method, path, body) => {
    const h = new Headers();
    for (const name of FORWARDED) {
      const v = c.req.header(name);
      if (v !== undefined) h.set(name, v);
    }
    if (body !== undefined) h.set('content-type', 'application/json');
    const res = await fetchApp(new Request(new URL(path, c.req.url), { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) }), c.env);
    for (const sc of res.headers.getSetCookie()) c.header('Set-Cookie', pagePath(sc), { append: true });
    const text = await res.text();
    let parsed: unknown = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = null;
      }
    }
    return { status: res.status, body: parsed, headers: res.headers };
  };
}
