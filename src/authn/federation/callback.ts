import type { Context } from 'hono';
import { AppError } from '../../errors.ts';
import type { FlowClient } from '../../flows/binding.ts';
import type { Completion, LoginService } from '../../flows/login-service.ts';
import type { FlowRow } from '../../flows/runtime.ts';
import { outcomeError } from '../../http/flow-outcome.ts';
import { presentCompletion } from '../../http/present.ts';
import type { Env, Services } from '../../http/services.ts';
import type { ExternalAssertion } from './assertion.ts';
import type { FederationErrorCode } from './errors.ts';
import type { FederationEvent } from '../../../machines/types.ts';

/**
 * Resumes the login flow that went to the IdP with what the IdP vouched for, already verified by
 * the protocol (OIDC callback, SAML ACS). The flow then does exactly what a password login does
 * after the password: identity resolution (link, JIT, verified-email link, or refusal), risk,
 * step-up, session. Only the browser that started the flow may resume it (`client`).
 */
export function resumeWithAssertion(login: LoginService, flowId: string, assertion: ExternalAssertion, client: FlowClient) {
  const event: FederationEvent = { type: 'federated', assertion: { ...assertion } };
  return login.submit(flowId, event, client);
}

/**
 * Ends a flow whose IdP round trip failed (denied with the code; `login.denied` audited by the
 * flow) and records what failed (`federation.failed`), then throws the problem. A flow that can
 * no longer be ended (finished, another device) is left as it is: the problem is the same.
 */
export async function failCallback(
  s: Services,
  o: { code: FederationErrorCode; what: string; provider: string; flowId?: string; client: FlowClient },
): Promise<never> {
  let row: FlowRow | undefined;
  if (o.flowId) {
    try {
      const event: FederationEvent = { type: 'federation_failed', reason: o.code };
      row = (await s.login.submit(o.flowId, event, o.client)).flow;
    } catch {
      row = undefined;
    }
  }
  await s.audit.append({ type: 'federation.failed', actor: `idp:${o.provider}`, subject: row?.identity_id ?? null, reason: o.code, data: { provider: o.provider, flow: o.flowId ?? null, what: o.what } });
  throw new AppError(o.code, { extra: row ? { flowRow: row } : {} });
}

/** API clients ask for JSON; a browser gets redirected. */
const wantsJson = (c: Context) => /\bapplication\/json\b/.test(c.req.header('accept') ?? '') && !/\btext\/html\b/.test(c.req.header('accept') ?? '');

/**
 * The answer to a callback that resumed a flow: a refused flow is its problem; otherwise a JSON
 * client gets the flow (with session and tokens when done), a browser a 303 to the landing URL
 * with the session cookie set — or, when the flow still asks for something (a step-up), to the
 * landing URL with `?flow=<id>` so the page can continue it.
 */
export function answerCallback(c: Context<Env>, s: Services, flow: FlowRow, completion: Completion | undefined): Response {
  const err = outcomeError(flow);
  if (err) throw err;
  const body = presentCompletion(c, flow, completion, { secure: s.config.secureCookies, setCookie: true });
  if (wantsJson(c)) return c.json(body);
  const landing = new URL(s.config.FEDERATION_LANDING_URL, s.config.PUBLIC_URL);
  if (!completion) landing.searchParams.set('flow', flow.id);
  return c.redirect(landing.href, 303);
}
