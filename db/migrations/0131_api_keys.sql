-- API keys (issue 11 item 4): shown once, stored as SHA-256, bound to the identity they stand for
-- and limited to a subset of their creator's permissions. Usage is counted in memory and
-- written in batches (use_count, last_used_at, last_ip, and per-day counts).
CREATE TABLE api_keys (
  id                    uuid PRIMARY KEY,
  identity_id           uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,  -- whom the key stands for
  created_by            uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,  -- whose grants bound it
  name                  text NOT NULL,
  display_prefix        text NOT NULL,                 -- thr_live_xxxxxx, to recognise a key in lists
  secret_hash           text NOT NULL UNIQUE,
  permissions           text[] NOT NULL,
  allowed_cidrs         text[] NOT NULL DEFAULT '{}',  -- empty: any address
  rate_limit_per_minute integer CHECK (rate_limit_per_minute > 0),
  expires_at            timestamptz,
  revoked_at            timestamptz,
  revoked_reason        text,
  rotated_from          uuid REFERENCES api_keys(id) ON DELETE SET NULL,
  replaced_by           uuid REFERENCES api_keys(id) ON DELETE SET NULL,
  created_at            timestamptz NOT NULL,
  use_count             bigint NOT NULL DEFAULT 0,
  last_used_at          timestamptz,
  last_ip               text
);
CREATE INDEX api_keys_identity ON api_keys (identity_id);
CREATE INDEX api_keys_created_by ON api_keys (created_by);

CREATE TABLE api_key_usage_daily (
  key_id uuid NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
  day    date NOT NULL,
  count  bigint NOT NULL,
  PRIMARY KEY (key_id, day)
);
