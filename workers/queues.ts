import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import { TEMPLATES } from '../src/notify/templates.ts';

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
  // Optional so jobs queued by an older API process still validate.
  userAgent: z.string().max(1000).nullable().optional(),
  passwordCorrect: z.boolean().optional(),
  // A live remembered-device token of this identity was presented (checked by the API).
  rememberedDevice: z.boolean().optional(),
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

export const NOTIFY_JOB = 'notify.send';

/** Templates a notify job may name (src/notify/templates.ts says what data each needs). */
export const NOTIFY_TEMPLATES = TEMPLATES;

const E164 = /^\+[1-9]\d{6,14}$/;
const notifyData = z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,39}$/), z.string().max(2000));

/**
 * Payload of a `notify.send` job. Strict, as it crosses a process boundary; the address must
 * fit the channel (an E.164 number for SMS). It carries a code in clear for `login_code`, so
 * it is never logged.
 */
export const NotifyJobSchema = z.discriminatedUnion('channel', [
  z.strictObject({ channel: z.literal('email'), to: z.email().max(320), template: z.enum(NOTIFY_TEMPLATES), data: notifyData }),
  z.strictObject({ channel: z.literal('sms'), to: z.string().regex(E164, 'must be an E.164 number'), template: z.enum(NOTIFY_TEMPLATES), data: notifyData }),
]);

export type NotifyJob = z.infer<typeof NotifyJobSchema>;

/**
 * A notify job as it travels through Redis when the deployment seals them: the NotifyJob as JSON,
 * AES-256-GCM under the master key, bound to its job id (notifyAad) — codes and recovery links
 * are never readable in Redis, its dumps or BullMQ's completed/failed job lists.
 */
export const SealedNotifySchema = z.strictObject({ sealed: z.string().min(1).max(65536) });
export const notifyAad = (jobId: string) => `notify.send:${jobId}`;

/**
 * Deterministic job id for message `seq` about `key` with `template` — e.g. a code challenge id
 * and its send count, or a login event id — so a retried request enqueues the same job and the
 * worker sends once. Same shape rules as riskJobId: no ':', long or unusual keys are hashed.
 */
export const notifyJobId = (template: (typeof NOTIFY_TEMPLATES)[number], key: string, seq = 0): string => {
  if (!(NOTIFY_TEMPLATES as readonly string[]).includes(template)) throw new Error(`invalid notify template: ${template}`);
  if (!Number.isSafeInteger(seq) || seq < 0) throw new Error(`invalid notify seq: ${seq}`);
  if (/^[A-Za-z0-9_-]{1,150}$/.test(key)) return `notify.${template}.${key}.${seq}`;
  return `notify.${template}.h.${createHash('sha256').update(key).digest('hex')}.${seq}`;
};
