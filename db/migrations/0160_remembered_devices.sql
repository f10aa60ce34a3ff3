-- Remembered devices (issue 12 item 5): after a passed step-up a user may remember the device.
-- The device id is a bearer secret, so only its keyed digest is kept (device_digest). Tokens
-- rotate on every use; a rotated token presented again revokes its device (reuse detection).
CREATE TABLE remembered_devices (
  id             uuid PRIMARY KEY,
  identity_id    uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  device_digest  text NOT NULL,
  name           text NOT NULL,
  country        text,
  created_at     timestamptz NOT NULL,
  last_seen_at   timestamptz NOT NULL,
  expires_at     timestamptz NOT NULL,
  revoked_at     timestamptz,
  revoked_reason text
);
CREATE INDEX remembered_devices_live ON remembered_devices (identity_id, device_digest) WHERE revoked_at IS NULL;

CREATE TABLE remembered_device_tokens (
  token_hash     text PRIMARY KEY,
  remembered_id  uuid NOT NULL REFERENCES remembered_devices(id) ON DELETE CASCADE,
  created_at     timestamptz NOT NULL,
  rotated_at     timestamptz
);
CREATE INDEX remembered_device_tokens_device ON remembered_device_tokens (remembered_id);
