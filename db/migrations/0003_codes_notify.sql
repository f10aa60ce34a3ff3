-- One-time SMS/email codes and idempotent notification delivery. PostgreSQL 15 / PGlite.

-- One row per flow (or purpose key such as `phone-bind:<factorId>`): a resend replaces the
-- code on the same row, so the guess budget (attempts / max_attempts) can never be refreshed
-- by asking for another code.
CREATE TABLE otp_challenges (
  id           uuid PRIMARY KEY,
  flow_id      text NOT NULL UNIQUE,
  identity_id  uuid,
  channel      text NOT NULL CHECK (channel IN ('sms', 'email')),
  destination  text NOT NULL,                       -- E.164 phone number or email address
  code_hash    text NOT NULL,                       -- HMAC-SHA256(pepper, id:code), never the code
  expires_at   timestamptz NOT NULL,
  attempts     integer NOT NULL DEFAULT 0,          -- wrong guesses, across every resend
  max_attempts integer NOT NULL CHECK (max_attempts > 0),
  sends        integer NOT NULL DEFAULT 0,
  last_sent_at timestamptz,
  consumed_at  timestamptz,
  created_at   timestamptz NOT NULL
);
CREATE INDEX otp_challenges_expires ON otp_challenges(expires_at);

-- One row per notify job (id = the deterministic BullMQ job id): the worker claims it before
-- calling the provider and marks it sent after, so a retried or duplicated job sends once.
CREATE TABLE notifications (
  id                  text PRIMARY KEY,
  channel             text NOT NULL CHECK (channel IN ('sms', 'email')),
  destination         text NOT NULL,
  template            text NOT NULL,
  -- pending: not tried yet or a retry is scheduled; sending: a provider call is in flight
  -- (until lease_until); sent; failed: no attempt left or a permanent refusal;
  -- unknown: an attempt died mid-call and the policy forbids sending again.
  status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'unknown')),
  attempts            integer NOT NULL DEFAULT 0,
  lease_until         timestamptz,
  provider_message_id text,
  last_error          text,
  created_at          timestamptz NOT NULL,
  updated_at          timestamptz NOT NULL,
  sent_at             timestamptz
);
CREATE INDEX notifications_status ON notifications(status, created_at);

-- Development only: what would have been emailed or texted.
CREATE TABLE dev_mailbox (
  id          uuid PRIMARY KEY,
  channel     text NOT NULL CHECK (channel IN ('sms', 'email')),
  destination text NOT NULL,
  subject     text,
  text_body   text NOT NULL,
  html_body   text,
  created_at  timestamptz NOT NULL
);
CREATE INDEX dev_mailbox_created ON dev_mailbox(created_at DESC);
