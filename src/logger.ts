import { pino, type DestinationStream, type Logger } from 'pino';

/** JSON logs; secrets are redacted by field name wherever they appear. */
export const REDACT_PATHS = [
  'password', '*.password', 'code', '*.code', 'token', '*.token', 'secret', '*.secret',
  'refresh_token', '*.refresh_token', 'access_token', '*.access_token', 'authorization',
  '*.authorization', 'req.headers.authorization', 'req.headers.cookie', 'cookie', '*.cookie',
  'otpauthUri', '*.otpauthUri', 'recoveryCodes', '*.recoveryCodes',
  // The device id binds flows (X-Device-Id): a bearer secret like the cookie that carries it.
  'deviceId', '*.deviceId', 'device_id', '*.device_id', 'req.headers["x-device-id"]',
];

/** `destination` defaults to stdout; tests pass a stream to read what would be logged. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const opts = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { svc: 'threshold' } };
  return destination ? pino(opts, destination) : pino(opts);
}
export type { Logger };
