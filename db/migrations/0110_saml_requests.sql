-- SAML 2.0 service provider (issue 10, item 4).
--
-- Every AuthnRequest we send is recorded: a response is accepted only when its InResponseTo
-- names a request we issued to that IdP, within its lifetime, and only once (`consumed_at` is
-- set by one atomic UPDATE … WHERE consumed_at IS NULL). Unsolicited (IdP-initiated) responses
-- have no row and are refused.
CREATE TABLE saml_requests (
  id          text PRIMARY KEY,          -- the AuthnRequest ID (what InResponseTo must name)
  provider_id text NOT NULL,             -- the identity provider it was sent to
  flow_id     text NOT NULL,             -- the login flow it serves
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  consumed_at timestamptz
);
CREATE INDEX saml_requests_expires ON saml_requests(expires_at);

-- The ACS is a cross-site form POST (no SameSite=Lax cookies), so it validates and consumes the
-- response, keeps the normalised assertion here under a one-time handle (stored as its SHA-256),
-- and redirects to a same-site GET that presents the handle with the browser's cookies. That GET
-- deletes the row (single use) and resumes the flow after checking the flow's browser binding.
CREATE TABLE saml_acs_results (
  handle_hash text PRIMARY KEY,
  request_id  text NOT NULL REFERENCES saml_requests(id) ON DELETE CASCADE,
  provider_id text NOT NULL,
  flow_id     text NOT NULL,
  assertion   jsonb NOT NULL,
  created_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL
);
CREATE INDEX saml_acs_results_expires ON saml_acs_results(expires_at);
