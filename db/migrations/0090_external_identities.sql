-- Shared foundation for federation, token exchange and account lifecycle (issues 10-12).
--
-- An identity may be linked to subjects at external issuers (an OIDC provider, a SAML IdP, a
-- trusted token issuer). (issuer, subject) names one external account; it links to exactly one
-- local identity. `mfa_verified` records whether the issuer proved MFA at the last login there.
CREATE TABLE external_identities (
  id            uuid PRIMARY KEY,
  identity_id   uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  issuer        text NOT NULL,
  subject       text NOT NULL,
  auth_protocol text NOT NULL CHECK (auth_protocol IN ('oidc', 'saml', 'token_exchange')),
  provider_id   uuid,                                 -- the configured IdP it came through, when there is one
  email         text,                                 -- as the issuer asserted it at the last login (lower-cased)
  mfa_verified  boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL,
  last_login_at timestamptz,
  UNIQUE (issuer, subject)
);
CREATE INDEX external_identities_identity ON external_identities(identity_id);

-- Whether the identity's email address was proven to be theirs (a verification code or link,
-- or an IdP that asserted email_verified and is trusted for it). Account linking relies on it.
ALTER TABLE identities ADD COLUMN email_verified boolean NOT NULL DEFAULT false;
