-- Roles and permissions of the source design. WRITE_BACK_EPIC and CONFIRM_RESULTS need MFA
-- proven within the last 15 minutes.
INSERT INTO roles (name, description) VALUES
  ('PATHOLOGIST', 'Reviews cases, confirms results and writes them back to the EHR'),
  ('TECHNICIAN', 'Views cases and manages data ingestion'),
  ('ADMIN', 'Manages configuration, users and reads the audit log')
ON CONFLICT (name) DO NOTHING;

INSERT INTO permissions (name, description, requirement) VALUES
  ('VIEW_CASES', 'Read cases', NULL),
  ('CREATE_AI_SUGGESTIONS', 'Ask for AI suggestions on a case', NULL),
  ('CONFIRM_RESULTS', 'Confirm a diagnostic result', '{"amr": ["mfa"], "maxAge": 900}'),
  ('WRITE_BACK_EPIC', 'Write results back to Epic', '{"amr": ["mfa"], "maxAge": 900}'),
  ('MANAGE_DATA_INGESTION', 'Configure data ingestion', NULL),
  ('MANAGE_CONFIG', 'Change configuration', NULL),
  ('VIEW_AUDIT_LOGS', 'Read the audit log', NULL),
  ('MANAGE_USERS', 'Create, lock and unlock users', NULL)
ON CONFLICT (name) DO NOTHING;

INSERT INTO role_permissions (role, permission) VALUES
  ('PATHOLOGIST', 'VIEW_CASES'), ('PATHOLOGIST', 'CREATE_AI_SUGGESTIONS'),
  ('PATHOLOGIST', 'CONFIRM_RESULTS'), ('PATHOLOGIST', 'WRITE_BACK_EPIC'),
  ('TECHNICIAN', 'VIEW_CASES'), ('TECHNICIAN', 'MANAGE_DATA_INGESTION'),
  ('ADMIN', 'MANAGE_CONFIG'), ('ADMIN', 'VIEW_AUDIT_LOGS'), ('ADMIN', 'MANAGE_USERS')
ON CONFLICT DO NOTHING;
