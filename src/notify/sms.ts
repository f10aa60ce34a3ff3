import { createHmac, randomUUID } from 'node:crypto';
import { DeliveryError, retryableStatus, type SmsSender } from './types.ts';

type FetchFn = typeof fetch;

export interface TwilioOptions {
  /** https://api.twilio.com, or a compatible provider's base URL. */
  baseUrl: string;
  accountSid: string;
  authToken: string;
  from: string;
  timeoutMs?: number;
  fetch?: FetchFn;
}

export interface WebhookOptions {
  url: string;
  /** Signs each body so the receiver can tell our messages from forged ones. */
  secret: string;
  timeoutMs?: number;
  fetch?: FetchFn;
}

/** Twilio's Messages API (and compatible ones): form-encoded POST with HTTP Basic auth. */
export function createTwilioSmsSender(o: TwilioOptions): SmsSender {
  const f = o.fetch ?? fetch;
  const endpoint = `${o.baseUrl.replace(/\/+$/, '')}/2010-04-01/Accounts/${encodeURIComponent(o.accountSid)}/Messages.json`;
  const auth = `Basic ${Buffer.from(`${o.accountSid}:${o.authToken}`).toString('base64')}`;
  return {
    kind: 'twilio',
    async send(m, opts) {
      const res = await post(f, endpoint, {
        headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ To: m.to, From: o.from, Body: m.body }).toString(),
        signal: deadline(o.timeoutMs, opts?.signal),
        provider: 'twilio',
      });
      const json = (await res.json().catch(() => null)) as { sid?: unknown } | null;
      // Accepted (2xx): never throw from here on, or a retry would send the text again.
      return { messageId: typeof json?.sid === 'string' ? json.sid : `twilio-unknown-${randomUUID()}` };
    },
  };
}

/** `sha256=<hex>` HMAC of the exact body bytes, as sent in X-Threshold-Signature. */
export const signWebhookBody = (secret: string, body: string): string =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

/** A generic JSON webhook: `{ to, body }`, signed with the shared secret. */
export function createWebhookSmsSender(o: WebhookOptions): SmsSender {
  const f = o.fetch ?? fetch;
  return {
    kind: 'webhook',
    async send(m, opts) {
      const body = JSON.stringify({ to: m.to, body: m.body });
      const res = await post(f, o.url, {
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'x-threshold-signature': signWebhookBody(o.secret, body),
          ...(m.idempotencyKey ? { 'idempotency-key': m.idempotencyKey } : {}),
        },
        body,
        signal: deadline(o.timeoutMs, opts?.signal),
        provider: 'webhook',
      });
      const json = (await res.json().catch(() => null)) as { id?: unknown; messageId?: unknown } | null;
      const id = typeof json?.messageId === 'string' ? json.messageId : typeof json?.id === 'string' ? json.id : null;
      return { messageId: id ?? m.idempotencyKey ?? `webhook-${randomUUID()}` };
    },
  };
}

const deadline = (ms: number | undefined, outer: AbortSignal | undefined): AbortSignal => {
  const own = AbortSignal.timeout(ms ?? 15_000);
  return outer ? AbortSignal.any([own, outer]) : own;
};

// Failures where no byte of the request can have reached the provider.
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

async function post(
  f: FetchFn,
  url: string,
  o: { headers: Record<string, string>; body: string; signal: AbortSignal; provider: string },
): Promise<Response> {
  let res: Response;
  try {
    // No redirects: the Authorization header must not follow one to another host.
    res = await f(url, { method: 'POST', headers: o.headers, body: o.body, signal: o.signal, redirect: 'manual' });
  } catch (e) {
    const code = (e as { cause?: { code?: string } }).cause?.code ?? (e as { code?: string }).code ?? '';
    const name = (e as { name?: string }).name ?? 'error';
    return Promise.reject(
      new DeliveryError(`${o.provider}: request failed (${code || name})`, {
        retryable: true,
        outcome: NOT_CONNECTED.has(code) ? 'not-sent' : 'unknown',
        cause: e,
      }),
    );
  }
  if (res.status >= 200 && res.status < 300) return res;
  // The provider answered and refused; its error body may echo the phone number, so only the
  // status and the provider's error code go into the message.
  const detail = (await res.json().catch(() => null)) as { code?: unknown } | null;
  const providerCode = typeof detail?.code === 'number' || typeof detail?.code === 'string' ? ` code ${detail.code}` : '';
  throw new DeliveryError(`${o.provider}: answered ${res.status}${providerCode}`, {
    retryable: retryableStatus(res.status),
    // A gateway timeout says nothing about whether the provider behind it took the message.
    outcome: res.status === 504 ? 'unknown' : 'not-sent',
    status: res.status,
  });
}
