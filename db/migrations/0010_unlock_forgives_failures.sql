-- An unlock (administrator or `npm run user:unlock`) forgives the account's recorded password
-- failures. Without this the FAILED_ATTEMPTS risk signal kept an unlocked account denied for the
-- whole failure window: three typos left a fresh administrator with no second factor out for an
-- hour. A time, not a deletion: back-tests of earlier decisions still see the failures.
ALTER TABLE login_events ADD COLUMN forgiven_at timestamptz;
