-- Account recovery (issue 12 item 3): one single-use link per recovery flow, stored as a keyed
-- digest. identity_id is NULL when the identifier named no usable account (the flow then looks
-- the same and no link can ever match).
CREATE TABLE recovery_links (
  flow_id      text PRIMARY KEY REFERENCES flows(id) ON DELETE CASCADE,
  identity_id  uuid REFERENCES identities(id) ON DELETE CASCADE,
  token_hash   text NOT NULL,
  requested_by text NOT NULL CHECK (requested_by IN ('user', 'admin')),
  created_at   timestamptz NOT NULL,
  expires_at   timestamptz NOT NULL,
  used_at      timestamptz
);
CREATE INDEX recovery_links_identity ON recovery_links (identity_id, created_at);

-- Recovery links go only to verified addresses. Until now every local account was created by an
-- administrator (or is the bootstrap admin), who vouches for the address they typed: those count
-- as verified. Federated accounts keep what their issuer asserted; self-service sign-ups start
-- unverified and prove their address first.
UPDATE identities SET email_verified = true
 WHERE NOT email_verified AND NOT EXISTS (SELECT 1 FROM external_identities e WHERE e.identity_id = identities.id);
