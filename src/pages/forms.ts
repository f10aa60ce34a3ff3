import type { Context } from 'hono';
import { z } from 'zod';
import { AppError } from '../errors.ts';
import { routeDocs } from '../http/openapi/doc.ts';

/**
 * The pages' HTML form bodies (application/x-www-form-urlencoded), one zod schema per kind of
 * form: strings only, bounded. The flow API validates the event itself; these only bound what a
 * page reads before passing it on.
 */
const str = (max: number) => z.string().max(max);
const common = { csrf: str(64), return_to: str(2048).optional() };

export const LoginStartForm = z.object({ ...common, identifier: str(320) }).strict();
export const FlowStepForm = z
  .object({
    ...common,
    type: z.enum(['password', 'choose', 'totp', 'code', 'resend', 'recovery_code', 'webauthn']),
    identifier: str(320).optional(),
    password: str(1024).optional(),
    method: str(32).optional(),
    code: str(64).optional(),
    response: str(16_384).optional().describe('AuthenticationResponseJSON, as JSON text'),
    remember: z.literal('on').optional().describe('After a passed step-up: remember this device'),
  })
  .strict();
export const AccountForm = z
  .object({
    csrf: str(64),
    label: str(100).optional(),
    code: str(64).optional(),
    uri: str(1024).optional().describe('The otpauth URI of the enrolment being confirmed (to show its QR code again after a wrong code)'),
    response: str(16_384).optional().describe('RegistrationResponseJSON, as JSON text'),
  })
  .strict();

/** Reads a page form; anything but bounded text fields is VALIDATION_FAILED (shown as a page). */
export async function readForm<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  let body: Record<string, unknown>;
  try {
    body = (await c.req.parseBody()) as Record<string, unknown>;
  } catch {
    throw new AppError('VALIDATION_FAILED');
  }
  const r = schema.safeParse(body);
  if (!r.success) throw new AppError('VALIDATION_FAILED');
  return r.data;
}

const html = (description: string) => ({ description, contentType: 'text/html', schema: { jsonSchema: { type: 'string' } } });
const form = (schema: z.ZodType) => ({ 'application/x-www-form-urlencoded': schema });
const RETURN = z.object({ return_to: z.string().max(2048).optional().describe('Where to go when done: a path here, or a URL on a registered origin (PUBLIC_URL, WEBAUTHN_ORIGINS, RETURN_TO_ORIGINS); anything else is refused with 400') });
const PAGE_ERRORS = ['CROSS_SITE_REQUEST', 'VALIDATION_FAILED'] as const;

/** The pages, in the contract too: HTML answers, form bodies, the page CSRF token. */
export const pageDocs = routeDocs('', 'Pages', {
  'GET /assets/:name': { summary: "The pages' stylesheet and scripts (and @simplewebauthn/browser's bundle)", auth: 'none', responses: { 200: { description: 'CSS or JavaScript', contentType: 'text/javascript', schema: { jsonSchema: { type: 'string' } } }, 304: { description: 'Not modified (ETag)' } } },
  'GET /login': { summary: 'Sign-in page: the identifier, a passkey, or an organisation', auth: 'none', query: RETURN, responses: { 200: html('The page'), 400: html('return_to refused') } },
  'POST /login': { summary: 'Sign-in page form: start a flow for the identifier', auth: 'none', bodies: form(LoginStartForm), responses: { 303: { description: 'To the flow page' }, 400: html('The page with an error') }, errors: [...PAGE_ERRORS] },
  'GET /login/idp/:slug': {
    summary: "An organisation's sign-in button: starts an IdP login (keeping return_to for the way back) and goes to the IdP",
    auth: 'none',
    query: RETURN,
    responses: { 303: { description: 'To the identity provider' }, 400: html('return_to refused'), 404: html('The sign-in page: no such provider') },
    errors: ['IDP_NOT_FOUND', 'IDP_UNAVAILABLE', 'RATE_LIMITED'],
  },
  'GET /': {
    summary: 'Landing after an IdP login (FEDERATION_LANDING_URL): on to the page sign-in’s return_to, the step-up page, or /account',
    auth: 'none',
    query: z.object({ flow: z.string().max(128).optional().describe('A flow still asking for a step (the IdP callback adds it)') }),
    responses: { 303: { description: 'To return_to, /login/:id or /account' } },
  },
  'GET /login/:id': { summary: "Sign-in page of a flow: its current step (reload and back are safe)", auth: 'none', query: RETURN, responses: { 200: html('The step'), 303: { description: 'Done: to return_to or /account' }, 404: html('No such flow') } },
  'POST /login/:id': { summary: 'Sign-in page form: one step of the flow', auth: 'none', bodies: form(FlowStepForm), responses: { 303: { description: 'To the next step, or done' }, 400: html('The step with an error') }, errors: [...PAGE_ERRORS] },
  'GET /stepup/:id': { summary: 'Step-up page of a flow (confirm it is you)', auth: 'session', query: RETURN, responses: { 200: html('The step'), 303: { description: 'Done, or not signed in' } } },
  'POST /stepup/:id': { summary: 'Step-up page form: one step', auth: 'session', bodies: form(FlowStepForm), responses: { 303: { description: 'To the next step, or done' }, 400: html('The step with an error') }, errors: [...PAGE_ERRORS] },
  'GET /account': { summary: 'Account page: sessions, factors, recovery codes', auth: 'session', responses: { 200: html('The page'), 303: { description: 'Not signed in: to /login' } } },
  ...Object.fromEntries(
    [
      ['/account/sessions/:id/end', 'Sign one of my other sessions out'],
      ['/account/sessions/end-others', 'Sign every other session out'],
      ['/account/devices/:id/forget', 'Forget a remembered device'],
      ['/account/factors/:id/rename', 'Rename a factor'],
      ['/account/factors/:id/remove', 'Remove a factor (may ask to confirm it is you first)'],
      ['/account/recovery-codes', 'New recovery codes (may ask to confirm it is you first)'],
      ['/account/confirm', 'Confirm it is you (starts a step-up flow)'],
      ['/account/logout', 'Sign out'],
      ['/account/totp', 'Add an authenticator app: its QR code'],
      ['/account/totp/:id/confirm', 'Confirm an authenticator app with a code'],
      ['/account/passkey', 'Add a passkey (the answer of the authenticator, from account.js)'],
    ].map(([p, summary]) => [`POST ${p}`, { summary: `Account page form: ${summary.toLowerCase()}`, auth: 'session' as const, bodies: form(AccountForm), responses: { 200: html('A page'), 303: { description: 'Back to the account page, or to a step-up flow' } }, errors: [...PAGE_ERRORS] }]),
  ),
});
