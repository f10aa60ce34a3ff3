import { Hono, type Context } from 'hono';
import { z } from 'zod';
import type { Clock } from '../../../clock.ts';
import { AppError } from '../../../errors.ts';
import type { FlowClient } from '../../../flows/binding.ts';
import { readForm } from '../../../http/body.ts';
import { routeDocs } from '../../../http/openapi/doc.ts';
import { SamlRejection } from './rejection.ts';
import { validateSamlResponse } from './response.ts';
import { samlSettingsSchema, type SamlSettings } from './settings.ts';
import { spMetadataXml } from './sp.ts';
import type { SamlStore } from './store.ts';
import type { ExternalAssertion } from './types.ts';

/**
 * The SAML routes of the HTTP-POST binding. The ACS is a cross-site form POST from the IdP, so
 * the browser's SameSite=Lax cookies (the device cookie the flow is bound to) do not arrive
 * there: the ACS validates and consumes the response (the signature and the single-use
 * InResponseTo are its protection; it is exempt from the CSRF origin check), keeps the result
 * under a one-time handle, and answers 303 to a same-site GET. That GET is a top-level
 * navigation, so the cookies arrive; it takes the handle once and resumes the flow only for the
 * browser that started it.
 */
export interface SamlProvider {
  id: string;
  slug: string;
  enabled: boolean;
  settings: SamlSettings;
}

export type SamlFailureCode = 'IDP_ERROR' | 'IDP_RESPONSE_INVALID';

export interface SamlRouteDeps {
  store: SamlStore;
  clock: Clock;
  /** The SAML IdP with this slug (null: none, or not SAML). */
  provider(slug: string): Promise<SamlProvider | null>;
  /** The client presenting the request (device cookie or X-Device-Id). */
  client(c: Context): FlowClient;
  /** Records the failure (audit `federation.failed`, `what` = the reason) and throws its problem; ends the flow when this client may. */
  fail(o: { code: SamlFailureCode; what: string; provider: string; flowId?: string; client: FlowClient }): Promise<never>;
  /** Resumes the flow with the assertion and answers (the flow, a redirect, or the flow's problem). */
  resume(c: Context, flowId: string, assertion: ExternalAssertion, client: FlowClient): Promise<Response>;
}

/** The one-time handle lives only for the redirect hop. */
export const ACS_HANDLE_TTL_SECONDS = 60;

const AcsForm = z
  .object({
    SAMLResponse: z.string().min(1).max(400_000).describe('The base64 SAML Response (HTTP-POST binding)'),
    RelayState: z.string().max(80).optional().describe('Ignored: the flow is found through InResponseTo'),
  })
  .strict();
const CompleteQuery = z.object({ handle: z.string().describe('The one-time handle the ACS redirected with') });

// IDP_ERROR and IDP_RESPONSE_INVALID join once the federation error codes are on main.
const SAML_ERRORS = ['NOT_FOUND'] as const;

export const samlDocs = routeDocs('/auth/saml', 'Identity providers', {
  'GET /:slug/metadata': {
    summary: 'SAML SP metadata for this IdP (entityID, HTTP-POST ACS, WantAssertionsSigned)',
    auth: 'none',
    responses: { 200: { description: 'SAML 2.0 metadata', contentType: 'application/samlmetadata+xml', schema: { jsonSchema: { type: 'string' } } } },
    errors: ['NOT_FOUND'],
  },
  'POST /:slug/acs': {
    summary: 'SAML AssertionConsumerService (HTTP-POST binding): the IdP’s auto-posted form',
    description:
      'Not CSRF-checked (a cross-site form post by design): the assertion must be signed by a trusted IdP key, name our entityID as audience and our ACS as recipient and destination, be within its validity window (bounded skew), and answer an AuthnRequest this server sent, once. ' +
      'On success: 303 to `GET /auth/saml/{slug}/complete?handle=…` (one-time, 60 s), where the browser’s cookies arrive.',
    auth: 'none',
    bodies: { 'application/x-www-form-urlencoded': AcsForm },
    responses: { 303: { description: 'To the completion step', headers: { Location: '/auth/saml/{slug}/complete?handle=…' } } },
    errors: [...SAML_ERRORS, 'UNSUPPORTED_MEDIA_TYPE'],
  },
  'GET /:slug/complete': {
    summary: 'Finishes the login flow the SAML response answered (the browser that started it only)',
    description:
      'Takes the one-time handle, checks the flow belongs to this browser, and resumes it: risk, step-up and session as for any login. With `Accept: application/json` the answer is the flow; a browser is redirected (303) to FEDERATION_LANDING_URL.',
    auth: 'none',
    query: CompleteQuery,
    responses: { 200: { description: 'The flow', schema: 'Flow' }, 303: { description: 'To the landing URL' } },
    errors: [...SAML_ERRORS, 'LOGIN_DENIED', 'ACCOUNT_LOCKED', 'FLOW_NOT_FOUND', 'FLOW_EXPIRED', 'FLOW_CONFLICT', 'INVALID_EVENT'],
  },
});

export function samlRoutes(deps: SamlRouteDeps) {
  const app = new Hono();

  const enabledProvider = async (slug: string): Promise<SamlProvider> => {
    const p = await deps.provider(slug);
    if (!p || !p.enabled) throw new AppError('NOT_FOUND');
    return p;
  };

  app.get('/:slug/metadata', async (c) => {
    const p = await enabledProvider(c.req.param('slug'));
    c.header('Cache-Control', 'public, max-age=300');
    return c.body(spMetadataXml(samlSettingsSchema.parse(p.settings)), 200, { 'Content-Type': 'application/samlmetadata+xml; charset=utf-8' });
  });

  app.post('/:slug/acs', async (c) => {
    const p = await enabledProvider(c.req.param('slug'));
    const form = await readForm(c, AcsForm);
    const client = deps.client(c);
    let handle: string;
    try {
      const accepted = await validateSamlResponse({ store: deps.store, clock: deps.clock }, { providerId: p.id, settings: p.settings, samlResponse: form.SAMLResponse });
      handle = await deps.store.putResult({ ...accepted, providerId: p.id, ttlSeconds: ACS_HANDLE_TTL_SECONDS });
    } catch (e) {
      if (!(e instanceof SamlRejection)) throw e;
      // The flow is not ended from here: this cross-site request cannot prove it comes from the
      // browser that owns the flow, and a forged post must not be able to kill someone's login.
      return deps.fail({ code: e.reason === 'IDP_STATUS' ? 'IDP_ERROR' : 'IDP_RESPONSE_INVALID', what: e.reason, provider: p.slug, client });
    }
    c.header('Cache-Control', 'no-store');
    return c.redirect(`/auth/saml/${encodeURIComponent(p.slug)}/complete?handle=${encodeURIComponent(handle)}`, 303);
  });

  app.get('/:slug/complete', async (c) => {
    const p = await enabledProvider(c.req.param('slug'));
    const client = deps.client(c);
    const handle = c.req.query('handle') ?? '';
    const taken = handle.length > 0 && handle.length <= 128 ? await deps.store.takeResult(handle, p.id) : null;
    if (!taken) return deps.fail({ code: 'IDP_RESPONSE_INVALID', what: 'HANDLE_INVALID', provider: p.slug, client });
    c.header('Cache-Control', 'no-store');
    return deps.resume(c, taken.flowId, taken.assertion, client);
  });

  return app;
}
