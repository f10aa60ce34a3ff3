/**
 * The side-by-side refresh phase of the benchmark (test/bench/bench.ts): a real `oidc-provider`
 * (v9, dev dependency) on loopback in this process, with its default in-memory adapter,
 * `rotateRefreshToken: true`, one confidential client (client_secret_post), and one refresh-token
 * chain per bench client hammered exactly like Threshold's (test/bench/sessions.ts refreshChains).
 *
 * The first token of each chain is minted through the provider's own models (a Grant holding
 * `openid offline_access`, then a RefreshToken bound to it), which is what its authorization_code
 * grant stores at the end of a consented flow. Per rotation oidc-provider authenticates the client
 * (secret compare), finds the refresh token and its Grant in memory, calls findAccount, marks the
 * token consumed (a consumed token presented again revokes the grant: reuse detection), saves a
 * new refresh token and an opaque access token in memory, and, because the scope has `openid`,
 * signs an ID token. The ID token is signed with Ed25519 (EdDSA), the algorithm of Threshold's
 * access tokens, so each side makes one EdDSA signature per rotation.
 */
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { refreshChains } from './sessions.ts';

/** The few oidc-provider 9 members used here (the package ships no type declarations). */
interface OidcModel {
  save(): Promise<string>;
}
interface OidcGrant extends OidcModel {
  addOIDCScope(scope: string): void;
}
interface OidcProvider {
  callback(): (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;
  Client: { find(id: string): Promise<unknown> };
  Grant: new (o: { accountId: string; clientId: string }) => OidcGrant;
  RefreshToken: new (o: Record<string, unknown>) => OidcModel;
}
type ProviderCtor = new (issuer: string, config: Record<string, unknown>) => OidcProvider;

const SCOPE = 'openid offline_access';
const CLIENT_ID = 'threshold-bench';
const PKG: string = 'oidc-provider';

/** Starts the provider and mints `chains` refresh tokens (one account and grant each). */
export async function startOidcProvider(chains: number) {
  // Imported at run time by a computed name: the package has no types, and this keeps it out of
  // the type checker without an ambient module declaration for the whole project.
  const Provider = ((await import(PKG)) as { default: ProviderCtor }).default;
  const { version } = createRequire(import.meta.url)(`${PKG}/package.json`) as { version: string };

  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const secret = randomBytes(32).toString('base64url');
  const jwk = { ...generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }), alg: 'EdDSA', use: 'sig', kid: 'bench-ed25519' };

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: secret,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: ['https://rp.example.test/cb'],
        token_endpoint_auth_method: 'client_secret_post',
        id_token_signed_response_alg: 'EdDSA',
      },
    ],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
    scopes: ['openid', 'offline_access'],
    rotateRefreshToken: true,
    issueRefreshToken: async () => true,
    // Lifetimes as Threshold's defaults (ACCESS_TOKEN_TTL_SECONDS, REFRESH_TOKEN_TTL_SECONDS).
    ttl: { AccessToken: 600, IdToken: 600, RefreshToken: 86_400, Grant: 86_400 },
    features: { devInteractions: { enabled: false } },
  });
  server.on('request', provider.callback());

  const client = await provider.Client.find(CLIENT_ID);
  if (!client) throw new Error('oidc-provider: bench client not found');
  const now = Math.floor(Date.now() / 1000);
  const mint = async (accountId: string) => {
    const grant = new provider.Grant({ accountId, clientId: CLIENT_ID });
    grant.addOIDCScope(SCOPE);
    const grantId = await grant.save();
    return new provider.RefreshToken({ client, accountId, grantId, scope: SCOPE, gty: 'authorization_code', authTime: now, amr: ['pwd'], rotations: 0 }).save();
  };
  const first: string[] = [];
  for (let i = 0; i < chains; i++) first.push(await mint(`bench-account-${i}`));
  const creds = { client_id: CLIENT_ID, client_secret: secret };

  // Probe (not measured): what one rotation answers, and that presenting a rotated token is refused.
  const post = (refresh_token: string) =>
    fetch(`${issuer}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...creds, grant_type: 'refresh_token', refresh_token }) });
  const probeToken = await mint('bench-probe');
  const answer = (await (await post(probeToken)).json()) as Record<string, string>;
  const replay = await post(probeToken);
  const replayError = ((await replay.json()) as { error?: string }).error;
  if (typeof answer.refresh_token !== 'string' || replay.status !== 400 || replayError !== 'invalid_grant') {
    throw new Error(`oidc-provider probe: rotation answered ${JSON.stringify(Object.keys(answer))}, replay ${replay.status} ${replayError}`);
  }
  const probe = {
    responseFields: Object.keys(answer).sort(),
    idTokenAlg: answer.id_token ? (JSON.parse(Buffer.from(answer.id_token.split('.')[0], 'base64url').toString()) as { alg: string }).alg : null,
    accessTokenFormat: answer.access_token?.split('.').length === 3 ? 'jwt' : 'opaque',
    replay: `${replay.status} ${replayError}`,
  };

  const chain = refreshChains(`${issuer}/token`, first.map(() => ({})), first, creds);
  return {
    version,
    probe,
    url: issuer,
    ...chain,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
