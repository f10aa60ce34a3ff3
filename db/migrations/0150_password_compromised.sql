-- A password proven at sign-in that is found in a breach corpus (offline filter or range API)
-- flags its account: the session says a change is required until the password changes
-- (setting a password clears it).
ALTER TABLE identities ADD COLUMN IF NOT EXISTS password_compromised boolean NOT NULL DEFAULT false;
