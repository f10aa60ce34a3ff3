import type { Clock } from '../clock.ts';
import type { Config } from '../config/config.ts';
import type { Jobs } from '../jobs/jobs.ts';
import type { RiskActorInput, RiskOutcome } from '../../machines/types.ts';
import { RISK_JOB, riskJobId } from '../../workers/queues.ts';

/**
 * Scores an attempt through the risk worker (a `risk.score` job) and waits for the answer within
 * RISK_TIMEOUT_MS. An answer that is not a decision we understand throws: the calling machine
 * fails closed (its deadline or onError picks RISK_UNAVAILABLE), so a broken scorer never allows.
 */
export async function requestRiskScore(
  deps: { jobs: Jobs; config: Pick<Config, 'RISK_QUEUE' | 'RISK_TIMEOUT_MS'>; clock: Clock },
  input: RiskActorInput,
  extra: { rememberedDevice?: boolean } = {},
): Promise<RiskOutcome> {
  const r = await deps.jobs.request<RiskOutcome>(
    deps.config.RISK_QUEUE,
    RISK_JOB,
    {
      identityId: input.identityId,
      deviceId: input.deviceId,
      ip: input.ip,
      at: deps.clock.now(),
      userAgent: input.userAgent ?? null,
      ...(extra.rememberedDevice ? { rememberedDevice: true } : {}),
    },
    { jobId: riskJobId(input.flowId, 0), timeoutMs: deps.config.RISK_TIMEOUT_MS },
  );
  if (!r || !['allow', 'step_up', 'deny'].includes(r.decision) || !Array.isArray(r.reasons)) throw new Error('malformed risk result');
  return r;
}
