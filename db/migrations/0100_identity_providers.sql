-- Federation (issue 10): identity providers, group → role mappings, organisations for
-- home-realm discovery, single-use authorization requests, and where a user's role came from.

-- An external identity provider. Protocol-specific settings (OIDC issuer, client id, sealed
-- client secret, scopes, claim mapping; SAML metadata, certificates) live in `settings`, checked
-- by the application per `type` (src/authn/federation/settings.ts).
CREATE TABLE identity_providers (
  id                     uuid PRIMARY KEY,
  slug                   text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  display_name           text NOT NULL,
  type                   text NOT NULL CHECK (type IN ('oidc', 'saml')),
  enabled                boolean NOT NULL DEFAULT true,
  settings               jsonb NOT NULL DEFAULT '{}',
  jit_provisioning       boolean NOT NULL DEFAULT false,
  -- Link an external subject to an existing local account by email: only when the IdP asserts
  -- the address verified AND this is on (off by default; every link is audited).
  link_by_verified_email boolean NOT NULL DEFAULT false,
  allowed_email_domains  text[] NOT NULL DEFAULT '{}',   -- lower-cased; empty = any domain
  -- Whether the IdP's own MFA counts: upstream amr / acr values that mean MFA, and how recent.
  trust_upstream_mfa     boolean NOT NULL DEFAULT false,
  mfa_amr_values         text[] NOT NULL DEFAULT '{mfa}',
  mfa_acr_values         text[] NOT NULL DEFAULT '{}',
  mfa_max_age_seconds    integer NOT NULL DEFAULT 900 CHECK (mfa_max_age_seconds > 0),
  managed_by             text NOT NULL DEFAULT 'api' CHECK (managed_by IN ('api', 'config')),
  created_at             timestamptz NOT NULL,
  updated_at             timestamptz NOT NULL
);

-- IdP group → local role. Re-evaluated at every federated login of a user of that provider.
CREATE TABLE idp_role_mappings (
  id          uuid PRIMARY KEY,
  provider_id uuid NOT NULL REFERENCES identity_providers(id) ON DELETE CASCADE,
  group_name  text NOT NULL,
  role        text NOT NULL REFERENCES roles(name) ON DELETE CASCADE,
  active      boolean NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL,
  UNIQUE (provider_id, group_name, role)
);

-- Organisations (tenants) whose email domains sign in at their own IdP.
CREATE TABLE organisations (
  id          uuid PRIMARY KEY,
  slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name        text NOT NULL,
  provider_id uuid REFERENCES identity_providers(id) ON DELETE SET NULL,
  created_at  timestamptz NOT NULL
);
CREATE TABLE organisation_domains (
  domain          text PRIMARY KEY CHECK (domain = lower(domain)),
  organisation_id uuid NOT NULL REFERENCES organisations(id) ON DELETE CASCADE
);

-- One authorization request sent to an IdP for a login flow. The callback finds it by the
-- digest of `state` and consumes it once (consumed_at), so a replayed callback finds nothing.
-- The PKCE verifier is sealed (aad = id); the nonce is compared to the ID token's.
CREATE TABLE idp_login_requests (
  id              uuid PRIMARY KEY,
  state_hash      text NOT NULL UNIQUE,
  flow_id         text NOT NULL,
  provider_id     uuid NOT NULL REFERENCES identity_providers(id) ON DELETE CASCADE,
  nonce           text NOT NULL,
  verifier_sealed text NOT NULL,
  created_at      timestamptz NOT NULL,
  expires_at      timestamptz NOT NULL,
  consumed_at     timestamptz
);
CREATE INDEX idp_login_requests_expires ON idp_login_requests(expires_at);

-- What the upstream IdP said at the last login (recorded, never trusted without the IdP's settings).
ALTER TABLE external_identities ADD COLUMN upstream_amr jsonb;
ALTER TABLE external_identities ADD COLUMN upstream_acr text;

-- Where a role grant came from: `manual` (an administrator, a script) or `mapping` (an IdP
-- group mapping of `source_provider`, removed again when the group is gone at the IdP).
ALTER TABLE user_roles ADD COLUMN source text NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'mapping'));
ALTER TABLE user_roles ADD COLUMN source_provider uuid REFERENCES identity_providers(id) ON DELETE CASCADE;

-- Administering identity providers is its own permission, held by ADMIN.
INSERT INTO permissions (name, description, requirement) VALUES
  ('MANAGE_IDPS', 'Configure identity providers, group mappings and organisations', NULL)
ON CONFLICT (name) DO NOTHING;
INSERT INTO role_permissions (role, permission) VALUES ('ADMIN', 'MANAGE_IDPS') ON CONFLICT DO NOTHING;
