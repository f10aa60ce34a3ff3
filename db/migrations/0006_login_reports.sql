-- "This wasn't me" links in new-device notices: single-use, hashed, bound to one session and
-- one login event.
CREATE TABLE login_reports (
  token_hash     text PRIMARY KEY,
  identity_id    uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  session_id     uuid NOT NULL,
  login_event_id uuid NOT NULL REFERENCES login_events(id) ON DELETE CASCADE,
  created_at     timestamptz NOT NULL,
  expires_at     timestamptz NOT NULL,
  used_at        timestamptz
);
