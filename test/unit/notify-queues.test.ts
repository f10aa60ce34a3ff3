import { describe, expect, it } from 'vitest';
import { assertJobId } from '../../src/jobs/jobs.ts';
import { NOTIFY_JOB, notifyJobId, NotifyJobSchema } from '../../workers/queues.ts';

const email = { channel: 'email', to: 'ada@example.test', template: 'login_code', data: { code: '123456' } };
const sms = { channel: 'sms', to: '+447700900123', template: 'login_code', data: { code: '123456' } };

describe('notify queue contract', () => {
  it('names the job', () => {
    expect(NOTIFY_JOB).toBe('notify.send');
  });

  it('accepts email and SMS jobs', () => {
    expect(NotifyJobSchema.parse(email)).toEqual(email);
    expect(NotifyJobSchema.parse(sms)).toEqual(sms);
  });

  it.each([
    ['an SMS to an email address', { ...sms, to: 'ada@example.test' }],
    ['an SMS to a national number', { ...sms, to: '07700900123' }],
    ['an email to a phone number', { ...email, to: '+447700900123' }],
    ['an unknown channel', { ...email, channel: 'fax' }],
    ['an unknown template', { ...email, template: 'promo' }],
    ['a non-string data value', { ...email, data: { code: 123456 } }],
    ['an odd data key', { ...email, data: { 'a:b': 'x' } }],
    ['an extra key', { ...email, priority: 'high' }],
    ['a missing key', { channel: 'email', to: 'ada@example.test', template: 'login_code' }],
  ])('rejects %s', (_, p) => {
    expect(NotifyJobSchema.safeParse(p).success).toBe(false);
  });

  it('derives deterministic, BullMQ-safe job ids', () => {
    expect(notifyJobId('login_code', 'abc-123', 1)).toBe('notify.login_code.abc-123.1');
    expect(notifyJobId('login_code', 'abc-123', 1)).toBe(notifyJobId('login_code', 'abc-123', 1));
    expect(notifyJobId('login_code', 'abc-123', 1)).not.toBe(notifyJobId('login_code', 'abc-123', 2));
    expect(notifyJobId('login_code', 'a', 0)).not.toBe(notifyJobId('new_device', 'a', 0));
    for (const key of ['phone-bind:7f1c', 'x/y z', 'ü'.repeat(300), 'k'.repeat(151), 'h']) {
      const id = notifyJobId('new_device', key, 3);
      expect(id).not.toContain(':');
      expect(assertJobId(id)).toBe(id);
      expect(id).toBe(notifyJobId('new_device', key, 3));
    }
    expect(notifyJobId('login_code', 'a:b')).not.toBe(notifyJobId('login_code', 'a_b'));
    expect(() => notifyJobId('login_code', 'a', -1)).toThrow();
    expect(() => notifyJobId('promo' as 'login_code', 'a')).toThrow();
  });
});
