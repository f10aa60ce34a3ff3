import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';

/** Queue names. Deployments may override the risk queue name with RISK_QUEUE. */
export const QUEUES = { risk: 'risk', notify: 'notify' } as const;

export const RISK_JOB = 'risk.score';

/** Payload of a `risk.score` job: a RiskInput. Strict, as it crosses a process boundary. */
export const RiskJobSchema = z.strictObject({
  // guid: any 8-4-4-4-12 hex id, as Postgres' uuid type accepts (z.uuid() also demands RFC variant bits)
  identityId: z.guid().nullable(),
  deviceId: z.string().min(1).max(200).nullable(),
  ip: z
    .string()
    .max(64)
    .refine((s) => isIP(s) !== 0, 'not an IP address'),
  at: z.int().min(0),
});

export type RiskJob = z.infer<typeof RiskJobSchema>;

/**
 * Deterministic job id for scoring attempt `attempt` of flow `flowId`, so a retried request
 * reuses the job instead of scoring twice. BullMQ forbids ':' in ids; ours use [A-Za-z0-9_.-].
 * A flow id with other characters (or a very long one) is hashed; the extra segment keeps a
 * hashed id from ever equalling a plain one.
 */
export const riskJobId = (flowId: string, attempt: number): string => {
  if (!Number.isSafeInteger(attempt) || attempt < 0) throw new Error(`invalid risk attempt: ${attempt}`);
  if (/^[A-Za-z0-9_-]{1,150}$/.test(flowId)) return `risk.${flowId}.${attempt}`;
  return `risk.h.${createHash('sha256').update(flowId).digest('hex')}.${attempt}`;
};
