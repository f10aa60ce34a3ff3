-- Permissions of the risk API. Changing what is enforced (create, activate, shadow) needs MFA
-- proven within 15 minutes; reading and labelling do not.
INSERT INTO permissions (name, description, requirement) VALUES
  ('VIEW_RISK', 'Read risk events, policies and shadow reports; simulate decisions', NULL),
  ('LABEL_RISK', 'Label risk events fraud or legit', NULL),
  ('MANAGE_RISK', 'Create, activate and shadow risk policies', '{"amr": ["mfa"], "maxAge": 900}')
ON CONFLICT (name) DO NOTHING;

INSERT INTO role_permissions (role, permission) VALUES
  ('ADMIN', 'VIEW_RISK'), ('ADMIN', 'LABEL_RISK'), ('ADMIN', 'MANAGE_RISK')
ON CONFLICT DO NOTHING;
