import type { Context } from 'hono';
import type { ApiKeyVerifier } from '../credentials/api-keys/verifier.ts';
import type { UsageRecorder } from '../credentials/api-keys/usage.ts';
import type { Authenticator, CredentialPrincipal } from './types.ts';

const SCHEME = /^ApiKey (\S{1,512})$/;

/** `Authorization: ApiKey <key>` or `X-API-Key: <key>`; undefined when neither is sent. */
export function readApiKey(c: Context): string | undefined {
  const auth = c.req.header('authorization');
  if (auth !== undefined && /^ApiKey /i.test(auth)) return SCHEME.exec(auth)?.[1] ?? '';
  const h = c.req.header('x-api-key');
  return h === undefined ? undefined : h.trim();
}

/**
 * API keys as principals (src/credentials/api-keys/verifier.ts has the checks). The principal
 * stands for the key's identity, limited to the key's permissions and bounded by its creator's
 * current grants; it proves no authentication method (`amr` empty), so a permission with a
 * requirement is refused to it. A use is counted for the statistics once the answer is known
 * and is not a refusal (`settle`, called by the app after the route).
 */
export function apiKeyAuthenticator(d: { verifier: ApiKeyVerifier; usage: UsageRecorder }): Authenticator {
  return {
    name: 'api_key',
    presented: (c) => readApiKey(c) !== undefined,
    async authenticate(c) {
      const key = readApiKey(c);
      if (key === undefined) return null;
      const ip = (c.get('clientIp' as never) as string | undefined) ?? '';
      const v = await d.verifier.verify(key, ip);
      if (!v) return null;
      const r = v.record;
      const p: CredentialPrincipal = {
        kind: 'api_key',
        via: 'api_key',
        identityId: r.identityId,
        credentialId: r.id,
        email: r.ownerEmail,
        scope: r.permissions,
        authority: r.createdBy,
        amr: [],
        authTime: Math.floor(r.createdAt / 1000),
        factorTimes: {},
      };
      c.set('settle' as never, ((status: number) => {
        if (status !== 401 && status !== 403) d.usage.record(r.id, ip);
      }) as never);
      return p;
    },
  };
}
