import { createHash, timingSafeEqual } from 'node:crypto';
import { AppError } from '../errors.ts';
import type { FlowRow } from './runtime.ts';

/**
 * The client presenting a flow: its device (the HttpOnly device cookie, or X-Device-Id) and, for
 * a step-up flow, the session it authenticated with.
 */
export interface FlowClient {
  deviceId: string | null;
  sessionId?: string;
}

export type BindingFailure = 'OTHER_DEVICE' | 'OTHER_SESSION';

const digest = (v: string) => createHash('sha256').update(v).digest();

/**
 * Stops a flow id from being finished from another browser or device than the one that started
 * it (risk was scored on that one): a leaked flow id is useless without the device secret.
 * A flow started without a device is only open to clients without one.
 */
export function bindingFailure(row: Pick<FlowRow, 'device_id' | 'session_id'>, client: FlowClient): BindingFailure | null {
  if (client.sessionId !== undefined && row.session_id !== client.sessionId) return 'OTHER_SESSION';
  if (row.device_id === null || client.deviceId === null) return row.device_id === client.deviceId ? null : 'OTHER_DEVICE';
  // Compared as digests: constant time whatever the lengths.
  return timingSafeEqual(digest(row.device_id), digest(client.deviceId)) ? null : 'OTHER_DEVICE';
}

/**
 * Loads a flow for this client. A flow bound elsewhere answers exactly like an unknown one (404
 * FLOW_NOT_FOUND), expired or not (an expired flow's 410 would confirm the id), so ids cannot be
 * probed; `onRefused` records the attempt first.
 */
export async function loadBound(
  load: (id: string) => Promise<FlowRow>,
  id: string,
  client: FlowClient,
  onRefused: (row: FlowRow, why: BindingFailure) => Promise<void>,
): Promise<FlowRow> {
  let row: FlowRow;
  try {
    row = await load(id);
  } catch (e) {
    const expired = e instanceof AppError && e.code === 'FLOW_EXPIRED' ? (e.extra?.flowRow as FlowRow | undefined) : undefined;
    const why = expired && bindingFailure(expired, client);
    if (expired && why) {
      await onRefused(expired, why);
      throw new AppError('FLOW_NOT_FOUND');
    }
    throw e;
  }
  const why = bindingFailure(row, client);
  if (why) {
    await onRefused(row, why);
    throw new AppError('FLOW_NOT_FOUND');
  }
  return row;
}

/**
 * A stable reference to a device for audit records and logs: the device id is a bearer secret
 * (whoever sends it as X-Device-Id is that device), so it is never written out in full.
 */
export function deviceRef(deviceId: string | null): string | null {
  return deviceId === null ? null : digest(deviceId).subarray(0, 12).toString('base64url');
}
