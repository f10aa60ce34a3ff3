-- Trusted token issuers (issue 10 §8, issue 11 §5): external issuers whose JWTs Threshold
-- verifies locally against their JWKS. One registry serves RFC 8693 token exchange, the
-- `Authorization: okta <jwt>` compatibility scheme and workload (Kubernetes service-account)
-- tokens. Rows come from the admin API (`source = 'api'`) or from TRUSTED_ISSUERS_FILE
-- (`source = 'file'`, rewritten at every start; the API refuses to change them).
CREATE TABLE trusted_issuers (
  id                uuid PRIMARY KEY,
  issuer            text NOT NULL UNIQUE,                -- the exact `iss` value
  discovery_url     text,                                -- OpenID discovery document (gives jwks_uri)
  jwks_uri          text,                                -- or the JWKS URL directly
  audiences         jsonb NOT NULL,                      -- accepted `aud` values (at least one)
  purposes          text NOT NULL CHECK (purposes IN ('token_exchange', 'workload', 'both')),
  algorithms        jsonb NOT NULL,                      -- allowed JWS algs (asymmetric only)
  max_token_age_s   integer CHECK (max_token_age_s IS NULL OR max_token_age_s > 0),
  link_by_email     boolean NOT NULL DEFAULT false,      -- exchange: link a verified email to a local identity
  trust_mfa         boolean NOT NULL DEFAULT false,      -- exchange: the token's amr may add `mfa`
  subject_mappings  jsonb NOT NULL DEFAULT '[]',         -- workload: [{subject, roles, namespaces}]
  token_review_url  text,                                -- workload: ask this TokenReview endpoint too
  enabled           boolean NOT NULL DEFAULT true,
  source            text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'file')),
  created_at        timestamptz NOT NULL,
  updated_at        timestamptz NOT NULL,
  CHECK (discovery_url IS NOT NULL OR jwks_uri IS NOT NULL)
);

-- A subject token is exchanged once: its `jti` (or its sha256 when it has none) is remembered
-- until it expires. The primary key makes the first INSERT the only winner of a race.
CREATE TABLE subject_token_uses (
  token_key   text PRIMARY KEY,
  issuer      text NOT NULL,
  session_id  uuid,
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz NOT NULL
);
CREATE INDEX subject_token_uses_expiry ON subject_token_uses (expires_at);

-- Registered machine clients for OAuth client_credentials (issue 11 §5).
CREATE TABLE machine_clients (
  client_id     text PRIMARY KEY,
  secret_hash   text NOT NULL,                          -- keyed hash of the secret (see clients.ts)
  roles         jsonb NOT NULL DEFAULT '[]',
  scopes        jsonb NOT NULL DEFAULT '[]',
  enabled       boolean NOT NULL DEFAULT true,
  created_at    timestamptz NOT NULL,
  last_used_at  timestamptz
);
