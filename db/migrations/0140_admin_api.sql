-- Admin API (issue 11 §3): the medical design's ADMIN role holds MANAGE_CONFIG and
-- VIEW_AUDIT_LOGS (0002 seeds both; kept here idempotently so an install whose grants were edited
-- by hand gets them back), and the indexes the admin lists page through.
INSERT INTO permissions (name, description, requirement) VALUES
  ('MANAGE_CONFIG', 'Change configuration', NULL),
  ('VIEW_AUDIT_LOGS', 'Read the audit log', NULL)
ON CONFLICT (name) DO NOTHING;
INSERT INTO role_permissions (role, permission) VALUES ('ADMIN', 'MANAGE_CONFIG'), ('ADMIN', 'VIEW_AUDIT_LOGS')
ON CONFLICT DO NOTHING;

-- /api/users: keyset pages on (created_at, id).
CREATE INDEX identities_created ON identities(created_at, id);
-- /api/sessions: every live session, keyset pages on (created_at, id).
CREATE INDEX sessions_live_created ON sessions(created_at, id) WHERE revoked_at IS NULL;
-- /api/audit: filters by actor or subject, newest first by seq; time ranges.
CREATE INDEX audit_events_actor ON audit_events(actor, seq);
CREATE INDEX audit_events_subject ON audit_events(subject, seq);
CREATE INDEX audit_events_at ON audit_events(at);
