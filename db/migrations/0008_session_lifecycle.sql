-- Session lifecycle state (machines/session.machine.ts) and locks on security events.
ALTER TABLE sessions ADD COLUMN state text NOT NULL DEFAULT 'active'
  CHECK (state IN ('active', 'warning', 'locked'));
ALTER TABLE sessions ADD COLUMN locked_at timestamptz;
ALTER TABLE sessions ADD COLUMN lock_reason text;
CREATE INDEX sessions_identity_live ON sessions(identity_id, created_at) WHERE revoked_at IS NULL;
