-- WebAuthn credentials (security keys and passkeys) and their single-use ceremony challenges.
-- Runs on PostgreSQL 15 and on PGlite.

CREATE TABLE webauthn_credentials (
  id             uuid PRIMARY KEY,
  identity_id    uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  -- base64url credential id. Globally unique: a second registration of an id (someone else's
  -- key replayed under a fresh account, or the same key twice) must fail, not shadow the first.
  credential_id  text NOT NULL UNIQUE,
  public_key     text NOT NULL,                      -- base64url COSE public key
  counter        bigint NOT NULL DEFAULT 0,          -- last accepted signature counter
  transports     jsonb NOT NULL DEFAULT '[]',
  device_type    text NOT NULL CHECK (device_type IN ('singleDevice', 'multiDevice')), -- BE flag
  backed_up      boolean NOT NULL DEFAULT false,     -- BS flag, as last asserted
  uv_initialized boolean NOT NULL DEFAULT false,     -- user verification has been performed with it
  aaguid         text,
  label          text NOT NULL,
  discoverable   boolean NOT NULL DEFAULT false,     -- resident key: usable for passkey sign-in
  created_at     timestamptz NOT NULL,
  last_used_at   timestamptz
);
CREATE INDEX webauthn_credentials_identity ON webauthn_credentials(identity_id);

CREATE TABLE webauthn_challenges (
  id                uuid PRIMARY KEY,
  purpose           text NOT NULL CHECK (purpose IN ('registration', 'authentication')),
  flow_key          text NOT NULL,                   -- flow id, or 'session:<sessionId>'
  identity_id       uuid REFERENCES identities(id) ON DELETE CASCADE, -- NULL: discoverable sign-in
  challenge         text NOT NULL UNIQUE,            -- base64url, 32 random bytes
  user_verification text NOT NULL CHECK (user_verification IN ('required', 'preferred')),
  passkey           boolean NOT NULL DEFAULT false,  -- registration asked for a discoverable credential
  expires_at        timestamptz NOT NULL,
  consumed_at       timestamptz,
  created_at        timestamptz NOT NULL
);
CREATE INDEX webauthn_challenges_flow ON webauthn_challenges(flow_key, purpose) WHERE consumed_at IS NULL;
CREATE INDEX webauthn_challenges_expires ON webauthn_challenges(expires_at);
