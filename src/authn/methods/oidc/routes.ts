import type { Context } from 'hono';
import { z } from 'zod';
import { AppError } from '../../../errors.ts';
import type { RouteDoc } from '../../../http/openapi/doc.ts';
import { deviceId } from '../../../http/middleware/client.ts';
import type { Env, Services } from '../../../http/services.ts';
import { answerCallback, failCallback, resumeWithAssertion } from '../../federation/callback.ts';
import { FederationError } from '../../federation/errors.ts';

const CallbackQuery = z.object({
  code: z.string().optional().describe('The authorization code'),
  state: z.string().optional().describe('The state this flow sent'),
  iss: z.string().optional().describe('RFC 9207: the issuer that answered (checked)'),
  error: z.string().optional().describe('The IdP refused or failed (e.g. access_denied)'),
});

/** Docs relative to /auth/idp (the idp method's mount). */
export const oidcCallbackDocs: Record<string, RouteDoc> = {
  'GET /:slug/callback': {
    summary: 'OIDC redirect URI: finishes the login flow that went to this IdP',
    description:
      'Checks state (single use, bound to the browser that started the flow), the RFC 9207 `iss`, the code with PKCE, the ID token (signature, iss, aud, nonce), then resumes the flow: risk, step-up and session as for any login. ' +
      'With `Accept: application/json` the answer is the flow (with `session`/`tokens` when done); a browser is redirected (303) to FEDERATION_LANDING_URL (with `?flow=<id>` while a step-up is asked for).',
    auth: 'none',
    query: CallbackQuery,
    headers: { Accept: '`application/json` for a JSON answer instead of a redirect' },
    responses: { 200: { description: 'The flow', schema: 'Flow' }, 303: { description: 'To the landing URL', headers: { Location: 'FEDERATION_LANDING_URL' } } },
    errors: ['IDP_ERROR', 'IDP_RESPONSE_INVALID', 'IDP_UNAVAILABLE', 'FEDERATION_REFUSED', 'LOGIN_DENIED', 'ACCOUNT_LOCKED', 'FLOW_NOT_FOUND', 'FLOW_EXPIRED', 'FLOW_CONFLICT', 'INVALID_EVENT'],
  },
};

/** GET /auth/idp/:slug/callback, a pipeline of named checks; every refusal is audited. */
export async function oidcCallback(c: Context<Env>, s: Services): Promise<Response> {
  const { oidc, providers } = s.federation;
  const slug = c.req.param('slug') ?? '';
  const query = new URL(c.req.url).searchParams;
  const client = { deviceId: deviceId(c, s.config.secureCookies, false) };
  const fail = (code: FederationError['code'], what: string, flowId?: string) => failCallback(s, { code, what, provider: slug, flowId, client });

  // checkState: present, and naming a request we made.
  const state = query.get('state');
  if (!state || state.length > 512) return fail('IDP_RESPONSE_INVALID', 'STATE_MISSING');
  const req = await oidc.findRequest(state);
  if (!req) return fail('IDP_RESPONSE_INVALID', 'STATE_UNKNOWN');
  // checkBinding: the browser that started the flow (another one: FLOW_NOT_FOUND, audited), not expired.
  try {
    await s.login.open(req.flow_id, client);
  } catch (e) {
    if (e instanceof AppError && e.code === 'FLOW_EXPIRED')
      await s.audit.append({ type: 'federation.failed', actor: `idp:${slug}`, reason: 'FLOW_EXPIRED', data: { provider: slug, flow: req.flow_id, what: 'FLOW_EXPIRED' } });
    throw e;
  }
  // checkSingleUse: a replayed (or raced) callback finds the request consumed. Only the request
  // that consumed it may end or resume the flow, so a replay cannot spoil the real callback.
  if (!(await oidc.consume(req))) return fail('IDP_RESPONSE_INVALID', 'STATE_REPLAYED');
  // checkProvider: the request went to the provider whose callback this is (mix-up by path).
  const p = await providers.get(req.provider_id);
  if (!p || p.slug !== slug || p.type !== 'oidc') return fail('IDP_RESPONSE_INVALID', 'PROVIDER_MISMATCH', req.flow_id);
  // checkIdpError: the IdP said no (the person cancelled, or it refused them).
  const idpError = query.get('error');
  if (idpError !== null) return fail('IDP_ERROR', /^[a-z_]{1,64}$/.test(idpError) ? idpError.toUpperCase() : 'OTHER', req.flow_id);
  // exchange: code + PKCE at the token endpoint; iss, ID token and nonce checked.
  let assertion;
  try {
    assertion = await oidc.finish(p, req, state, query);
  } catch (e) {
    if (e instanceof FederationError) return fail(e.code, e.what, req.flow_id);
    throw e;
  }
  const { flow, completion } = await resumeWithAssertion(s.login, req.flow_id, assertion, client);
  return answerCallback(c, s, flow, completion);
}
