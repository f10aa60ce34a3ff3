import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/db.ts';
import type { Config } from '../../config/config.ts';
import type { Audit } from '../../audit/audit.ts';
import type { Logger } from '../../logger.ts';
import { createIssuerRegistry, type IssuerRegistry } from './registry.ts';
import { createJwksCache, type JwksCache } from './jwks.ts';
import { createTrustedTokenVerifier, type TrustedTokenVerifier } from './verifier.ts';
import { createTokenExchange, type ExchangeDeps, type TokenExchange } from './exchange.ts';
import { createWorkloadVerifier, type WorkloadVerifier } from './workload.ts';

/** Trusted token issuers and what is built on them, as the composition root wires them. */
export interface TrustedIssuerServices {
  registry: IssuerRegistry;
  jwks: JwksCache;
  verifier: TrustedTokenVerifier;
  exchange: TokenExchange;
  workloads: WorkloadVerifier;
}

export function createTrustedIssuers(
  d: { db: Db; clock: Clock; config: Config; audit: Audit; logger: Logger; fetch?: typeof fetch } & Omit<ExchangeDeps, 'verifier' | 'db' | 'clock' | 'audit'>,
): TrustedIssuerServices {
  const registry = createIssuerRegistry({ db: d.db, clock: d.clock });
  const jwks = createJwksCache({
    clock: d.clock,
    ttlMs: d.config.TRUSTED_ISSUER_JWKS_TTL_SECONDS * 1000,
    refreshFloorMs: d.config.TRUSTED_ISSUER_JWKS_REFRESH_FLOOR_SECONDS * 1000,
    fetch: d.fetch,
  });
  const verifier = createTrustedTokenVerifier({ registry, jwks, clock: d.clock });
  const exchange = createTokenExchange({ ...d, verifier, score: d.config.TOKEN_EXCHANGE_RISK === 'on' ? d.score : undefined, firstUseWaitMs: d.config.RISK_TIMEOUT_MS + 3000 });
  const workloads = createWorkloadVerifier({ verifier, registry, clock: d.clock, fetch: d.fetch });
  return { registry, jwks, verifier, exchange, workloads };
}

/** Apply TRUSTED_ISSUERS_FILE (at start, before serving); audited as file-managed changes. */
export async function applyTrustedIssuersFile(t: TrustedIssuerServices, config: Config, audit: Audit, logger: Logger): Promise<void> {
  if (!config.TRUSTED_ISSUERS_FILE) return;
  const n = await t.registry.loadFile(config.TRUSTED_ISSUERS_FILE);
  await audit.append({ type: 'trusted_issuer.updated', reason: 'FILE', data: { file: config.TRUSTED_ISSUERS_FILE, issuers: n } });
  logger.info({ issuers: n }, 'trusted issuers applied from TRUSTED_ISSUERS_FILE');
}
