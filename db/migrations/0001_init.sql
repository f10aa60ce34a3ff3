-- Threshold schema v1. Runs on PostgreSQL 15 and on PGlite; uses nothing newer than PG 15.

CREATE TABLE identities (
  id              uuid PRIMARY KEY,
  email           text NOT NULL UNIQUE,            -- stored lower-cased
  display_name    text,
  status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
  failed_attempts integer NOT NULL DEFAULT 0,       -- consecutive password failures
  mfa_failed_attempts integer NOT NULL DEFAULT 0,   -- consecutive second-factor failures (all flows)
  locked_at       timestamptz,
  locked_until    timestamptz,                      -- NULL with locked_at set: admin unlock only
  created_at      timestamptz NOT NULL
);

CREATE TABLE password_credentials (
  identity_id uuid PRIMARY KEY REFERENCES identities(id) ON DELETE CASCADE,
  hash        text NOT NULL,
  updated_at  timestamptz NOT NULL
);

CREATE TABLE totp_factors (
  id            uuid PRIMARY KEY,
  identity_id   uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  label         text NOT NULL,
  secret_sealed text NOT NULL,                      -- AES-256-GCM, aad = factor id
  confirmed_at  timestamptz,
  last_step     bigint,                             -- last accepted RFC 6238 time step (replay guard)
  created_at    timestamptz NOT NULL,
  last_used_at  timestamptz
);
CREATE INDEX totp_factors_identity ON totp_factors(identity_id);

CREATE TABLE recovery_codes (
  id          uuid PRIMARY KEY,
  identity_id uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  code_hash   text NOT NULL,
  used_at     timestamptz,
  created_at  timestamptz NOT NULL
);
CREATE INDEX recovery_codes_identity ON recovery_codes(identity_id);

CREATE TABLE roles (
  name        text PRIMARY KEY,
  description text NOT NULL DEFAULT ''
);

CREATE TABLE permissions (
  name        text PRIMARY KEY,
  description text NOT NULL DEFAULT '',
  requirement jsonb                                  -- {"amr": ["mfa"], "maxAge": 900} or NULL
);

CREATE TABLE role_permissions (
  role       text NOT NULL REFERENCES roles(name) ON DELETE CASCADE,
  permission text NOT NULL REFERENCES permissions(name) ON DELETE CASCADE,
  PRIMARY KEY (role, permission)
);

CREATE TABLE user_roles (
  identity_id uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  role        text NOT NULL REFERENCES roles(name) ON DELETE CASCADE,
  PRIMARY KEY (identity_id, role)
);

CREATE TABLE sessions (
  id                  uuid PRIMARY KEY,
  identity_id         uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  token_hash          text NOT NULL UNIQUE,          -- sha256 of the cookie value
  amr                 jsonb NOT NULL,
  acr                 text NOT NULL,
  auth_time           timestamptz NOT NULL,
  factor_times        jsonb NOT NULL DEFAULT '{}',   -- amr value -> epoch seconds it was proven
  device_id           text,
  ip                  text,
  country             text,
  created_at          timestamptz NOT NULL,
  last_seen_at        timestamptz NOT NULL,
  idle_expires_at     timestamptz NOT NULL,
  absolute_expires_at timestamptz NOT NULL,
  revoked_at          timestamptz,
  revoke_reason       text
);
CREATE INDEX sessions_identity ON sessions(identity_id);

CREATE TABLE flows (
  id              text PRIMARY KEY,
  type            text NOT NULL,
  identity_id     uuid REFERENCES identities(id) ON DELETE CASCADE,
  session_id      uuid,
  machine_version integer NOT NULL,
  version         integer NOT NULL DEFAULT 0,        -- optimistic concurrency
  lease_until     timestamptz,                       -- one request at a time advances a flow
  snapshot        jsonb NOT NULL,
  state           text NOT NULL,
  device_id       text,
  ip              text,
  return_tokens   boolean NOT NULL DEFAULT false,
  expires_at      timestamptz NOT NULL,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL
);
CREATE INDEX flows_expires ON flows(expires_at);

CREATE TABLE login_events (
  id             uuid PRIMARY KEY,
  flow_id        text,
  identity_id    uuid REFERENCES identities(id) ON DELETE SET NULL,
  device_id      text,
  ip             text,
  country        text,
  latitude       double precision,
  longitude      double precision,
  outcome        text NOT NULL,                      -- succeeded | failed | denied | locked | stepped_up
  signals        jsonb,
  policy_version text,
  contributions  jsonb,
  score          integer,
  decision       text,                               -- allow | step_up | deny
  reasons        jsonb,
  factors        jsonb,
  label          text,                               -- e.g. fraudulent, kept for back-tests
  created_at     timestamptz NOT NULL
);
CREATE INDEX login_events_identity ON login_events(identity_id, created_at DESC);
CREATE INDEX login_events_ip ON login_events(ip, created_at DESC);

CREATE TABLE risk_policies (
  version    text PRIMARY KEY,
  document   jsonb NOT NULL,
  active     boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL
);

CREATE TABLE signing_keys (
  kid            text PRIMARY KEY,
  alg            text NOT NULL,
  public_jwk     jsonb NOT NULL,
  private_sealed text NOT NULL,                      -- AES-256-GCM, aad = kid
  created_at     timestamptz NOT NULL,
  retired_at     timestamptz
);

CREATE TABLE audit_events (
  seq       bigserial PRIMARY KEY,
  id        uuid NOT NULL UNIQUE,
  at        timestamptz NOT NULL,
  type      text NOT NULL,                           -- <noun>.<past-verb>
  actor     text,
  subject   text,
  reason    text,
  data      jsonb NOT NULL DEFAULT '{}',
  prev_hash text NOT NULL,
  hash      text NOT NULL
);
CREATE INDEX audit_events_type ON audit_events(type, seq);

-- Append-only: no role, the app's included, may UPDATE, DELETE or TRUNCATE audit rows.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

CREATE TABLE app_meta (
  key   text PRIMARY KEY,
  value jsonb NOT NULL
);
