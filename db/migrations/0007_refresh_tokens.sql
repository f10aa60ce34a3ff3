-- Refresh tokens (RFC 9700 §4.14): opaque, stored as sha256, rotated on every use, grouped in a
-- family per sign-in. The family row is the lock every change of a family takes first
-- (rotation, revocation, rebinding), so they serialise without deadlocks.
-- PostgreSQL 15 / PGlite.

CREATE TABLE refresh_families (
  id            uuid PRIMARY KEY,
  session_id    uuid NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,  -- dies with its session
  identity_id   uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  created_at    timestamptz NOT NULL,
  revoked_at    timestamptz,
  revoke_reason text                                  -- refresh_reuse | risk_deny | logout | …
);
CREATE INDEX refresh_families_session ON refresh_families(session_id);

CREATE TABLE refresh_tokens (
  id            uuid PRIMARY KEY,
  family_id     uuid NOT NULL REFERENCES refresh_families(id) ON DELETE CASCADE,
  session_id    uuid NOT NULL,                        -- the family's session (copied; the family row decides)
  identity_id   uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  token_hash    text NOT NULL UNIQUE,                 -- sha256 hex of the opaque token
  parent_id     uuid REFERENCES refresh_tokens(id) ON DELETE CASCADE,
  created_at    timestamptz NOT NULL,
  expires_at    timestamptz NOT NULL,                 -- never after the session's absolute expiry
  rotated_at    timestamptz,                          -- set once, atomically: a second use is reuse
  revoked_at    timestamptz,
  revoke_reason text,
  ip            text,
  country       text,
  device_id     text,
  -- Only with a reuse grace enabled: the child token, AES-256-GCM under a key derived from THIS
  -- token (so only its holder can open it; the database alone cannot). Cleared on the next rotation.
  grace_child_sealed text
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
-- A token is rotated once, so it has at most one child.
CREATE UNIQUE INDEX refresh_tokens_parent ON refresh_tokens(parent_id);
