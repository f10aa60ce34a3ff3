/** @jsxImportSource hono/jsx */
import type { Child } from 'hono/jsx';
import type { Context } from 'hono';
import { PAGE_CSP } from './security.ts';

/**
 * Every page's frame: `lang`, one stylesheet and at most one or two deferred scripts from our own
 * origin (no inline script or style, so the CSP can forbid them), a skip link and one <main>.
 */
export function Layout(props: { title: string; scripts?: string[]; children: Child; wide?: boolean; refresh?: string }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${props.title} · Threshold`}</title>
        <link rel="stylesheet" href="/assets/pages.css" />
        {/* Goes on to another site (an IdP) without script; not a redirect of a form post, so form-action does not apply. */}
        {props.refresh ? <meta http-equiv="refresh" content={`0;url=${props.refresh}`} /> : null}
        {(props.scripts ?? []).map((s) => (
          <script src={`/assets/${s}`} defer></script>
        ))}
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <main id="main" class={props.wide ? 'wide' : undefined}>
          {props.children}
        </main>
      </body>
    </html>
  );
}

/** A message box: `alert` for errors (read out at once), `status` for news. */
export function Notice(props: { kind: 'error' | 'info'; id?: string; children: Child }) {
  return (
    <div id={props.id} class={`notice ${props.kind}`} role={props.kind === 'error' ? 'alert' : 'status'}>
      {props.children}
    </div>
  );
}

/** Answer a page: the strict CSP, never cached (it may show codes and session details), framing refused. */
export function sendPage(c: Context, page: ReturnType<typeof Layout>, status = 200) {
  c.header('Content-Security-Policy', PAGE_CSP);
  c.header('Cache-Control', 'no-store');
  // A form post then carries this page's Origin (under no-referrer a browser sends `Origin: null`).
  c.header('Referrer-Policy', 'same-origin');
  return c.html('<!doctype html>' + String(page), status as 200);
}
