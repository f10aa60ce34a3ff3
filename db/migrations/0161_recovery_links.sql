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

-- Recovery links go only to verified addresses (identities.email_verified, set when the user proves
-- the address with a code or link, or by an issuer trusted for it). An address an administrator
-- typed is not proof: a typo would hand the account's recovery to whoever owns the mistyped address.
