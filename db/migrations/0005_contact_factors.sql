-- Phone numbers (SMS codes) and email addresses bound as second factors. Binding is confirmed by
-- a code sent to the destination; a different number is a new factor (a new row).
CREATE TABLE contact_factors (
  id           uuid PRIMARY KEY,
  identity_id  uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  channel      text NOT NULL CHECK (channel IN ('sms', 'email')),
  destination  text NOT NULL,                       -- E.164 phone number or email address
  label        text NOT NULL,
  confirmed_at timestamptz,
  created_at   timestamptz NOT NULL,
  last_used_at timestamptz
);
CREATE INDEX contact_factors_identity ON contact_factors(identity_id);
CREATE UNIQUE INDEX contact_factors_one_confirmed ON contact_factors(identity_id, channel, destination)
  WHERE confirmed_at IS NOT NULL;

-- Labels on new-device login events ("this wasn't me" marks one fraudulent for back-tests).
CREATE TABLE login_event_labels (
  login_event_id uuid PRIMARY KEY REFERENCES login_events(id) ON DELETE CASCADE,
  label          text NOT NULL CHECK (label IN ('fraudulent', 'legitimate')),
  source         text NOT NULL,
  created_at     timestamptz NOT NULL
);
