import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { exportJWK, importJWK, SignJWT, type JWK } from 'jose';

/** The few oidc-provider 9 members used here (the package ships no type declarations). */
type ProviderCtor = new (issuer: string, config: Record<string, unknown>) => { callback(): (req: IncomingMessage, res: ServerResponse) => void };
const PKG: string = 'oidc-provider';

const listen = async (server: Server) => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};
const closeServer = (server: Server) =>
  new Promise<void>((r) => {
    server.closeAllConnections();
    server.close(() => r());
  });

/**
 * A real OpenID Provider (oidc-provider 9) on loopback that issues JWT access tokens (RFC 9068)
 * through its client_credentials grant with a resource indicator: the token's `aud` is the
 * resource asked for, `sub` the client id. `claims[clientId]` adds claims (email, amr…) through
 * the provider's `extraTokenClaims`. One client per subject.
 */
export async function startLoopbackOidc(o: { clients: string[]; claims?: Record<string, Record<string, unknown>>; accessTokenTtl?: number }) {
  const Provider = ((await import(PKG)) as { default: ProviderCtor }).default;
  const server = createServer();
  const issuer = await listen(server);
  const secret = randomBytes(24).toString('base64url');
  const es = { ...(await exportJWK(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey)), alg: 'ES256', use: 'sig', kid: `es-${randomUUID().slice(0, 8)}` };
  const provider = new Provider(issuer, {
    clients: o.clients.map((client_id) => ({
      client_id,
      client_secret: secret,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_post',
      id_token_signed_response_alg: 'ES256',
    })),
    jwks: { keys: [es] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    ttl: { ClientCredentials: o.accessTokenTtl ?? 600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => undefined,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx: unknown, resource: string) => ({ scope: 'api', audience: resource, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }),
      },
    },
    extraTokenClaims: async (_ctx: unknown, token: { clientId?: string }) => o.claims?.[token.clientId ?? ''],
  });
  server.on('request', provider.callback());
  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    /** A fresh JWT access token for `clientId` with `aud` = `resource`. */
    async token(clientId: string, resource: string): Promise<string> {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret, resource, scope: 'api' }),
      });
      const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!body.access_token) throw new Error(`oidc-provider token: ${res.status} ${body.error} ${body.error_description}`);
      return body.access_token;
    },
    close: () => closeServer(server),
  };
}
export type LoopbackOidc = Awaited<ReturnType<typeof startLoopbackOidc>>;

/**
 * A workload identity issuer on loopback, shaped like a Kubernetes API server's: an OpenID
 * discovery document, a JWKS (counted, with key rotation), tokens in the service-account claim
 * shape, and a TokenReview endpoint (`POST /apis/authentication.k8s.io/v1/tokenreviews`) that
 * accepts the tokens it signed and has not revoked.
 */
export async function startWorkloadIssuer() {
  const server = createServer();
  const issuer = await listen(server);
  const keys: { kid: string; priv: Awaited<ReturnType<typeof importJWK>>; pub: JWK }[] = [];
  const revoked = new Set<string>();
  const counts = { jwks: 0, reviews: 0 };
  let jwksStatus = 200;
  const rotate = async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const kid = `k8s-${randomUUID().slice(0, 8)}`;
    const jwk = await exportJWK(privateKey);
    const pub: JWK = { kty: jwk.kty, n: jwk.n, e: jwk.e, kid, alg: 'RS256', use: 'sig' };
    keys.push({ kid, priv: await importJWK({ ...jwk, alg: 'RS256' }, 'RS256'), pub });
    return kid;
  };
  await rotate();
  server.on('request', (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const json = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.url === '/.well-known/openid-configuration') return json(200, { issuer, jwks_uri: `${issuer}/openid/v1/jwks` });
      if (req.url === '/openid/v1/jwks') {
        counts.jwks++;
        return json(jwksStatus, jwksStatus === 200 ? { keys: keys.map((k) => k.pub) } : { error: 'down' });
      }
      if (req.url === '/apis/authentication.k8s.io/v1/tokenreviews' && req.method === 'POST') {
        counts.reviews++;
        const review = JSON.parse(Buffer.concat(chunks).toString() || '{}') as { spec?: { token?: string } };
        const token = review.spec?.token ?? '';
        const payload = token.split('.')[1] ? (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { sub?: string; jti?: string }) : {};
        const ok = !!payload.sub && !revoked.has(payload.jti ?? '');
        return json(201, {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenReview',
          status: ok ? { authenticated: true, user: { username: payload.sub, groups: ['system:serviceaccounts'] } } : { authenticated: false, error: 'token revoked' },
        });
      }
      json(404, {});
    });
  });
  /** A token in the Kubernetes projected service-account token shape. */
  async function sign(o: { namespace: string; name: string; audience: string | string[]; ttl?: number; iat?: number; kid?: string; iss?: string; claims?: Record<string, unknown> }) {
    const k = o.kid ? keys.find((x) => x.kid === o.kid)! : keys[keys.length - 1];
    const now = o.iat ?? Math.floor(Date.now() / 1000);
    const jti = randomUUID();
    return new SignJWT({
      'kubernetes.io': { namespace: o.namespace, serviceaccount: { name: o.name, uid: randomUUID() }, pod: { name: `${o.name}-7d9f8b-x2x1z`, uid: randomUUID() } },
      jti,
      ...o.claims,
    })
      .setProtectedHeader({ alg: 'RS256', kid: k.kid })
      .setIssuer(o.iss ?? issuer)
      .setSubject(`system:serviceaccount:${o.namespace}:${o.name}`)
      .setAudience(o.audience)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + (o.ttl ?? 3600))
      .sign(k.priv);
  }
  /** A token with arbitrary claims (e.g. a person's, for token exchange), signed with the current key. */
  async function signClaims(claims: Record<string, unknown>, o: { kid?: string; alg?: string } = {}) {
    const k = keys[keys.length - 1];
    return new SignJWT(claims).setProtectedHeader({ alg: o.alg ?? 'RS256', kid: o.kid ?? k.kid }).sign(k.priv);
  }
  return {
    issuer,
    jwksUri: `${issuer}/openid/v1/jwks`,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    tokenReviewUrl: `${issuer}/apis/authentication.k8s.io/v1/tokenreviews`,
    counts,
    rotate,
    sign,
    signClaims,
    revoke: (jti: string) => revoked.add(jti),
    setJwksStatus: (s: number) => {
      jwksStatus = s;
    },
    close: () => closeServer(server),
  };
}
export type WorkloadIssuer = Awaited<ReturnType<typeof startWorkloadIssuer>>;
