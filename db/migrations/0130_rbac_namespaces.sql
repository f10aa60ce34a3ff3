-- RBAC as the operator design draws it (issue 11 item 2): role bindings scoped to a namespace,
-- and permissions granted to a user directly (globally or in a namespace).
-- The empty string means "every namespace" (a primary key cannot hold NULL); the API shows null.
ALTER TABLE user_roles ADD COLUMN namespace text NOT NULL DEFAULT '';
ALTER TABLE user_roles ADD CONSTRAINT user_roles_namespace_format
  CHECK (namespace = '' OR namespace ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$');
ALTER TABLE user_roles DROP CONSTRAINT user_roles_pkey;
ALTER TABLE user_roles ADD PRIMARY KEY (identity_id, role, namespace);

CREATE TABLE user_permissions (
  identity_id uuid NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
  permission  text NOT NULL REFERENCES permissions(name) ON DELETE CASCADE,
  namespace   text NOT NULL DEFAULT ''
              CHECK (namespace = '' OR namespace ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$'),
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (identity_id, permission, namespace)
);

-- Who may change role bindings and direct grants (PUT/DELETE /api/users/:id/roles|permissions),
-- and manage other people's API keys.
INSERT INTO permissions (name, description, requirement) VALUES
  ('MANAGE_ROLES', 'Bind roles and grant permissions to users', NULL),
  ('MANAGE_API_KEYS', 'Create, rotate and revoke API keys of any user or service', NULL)
ON CONFLICT (name) DO NOTHING;
INSERT INTO role_permissions (role, permission) VALUES ('ADMIN', 'MANAGE_ROLES'), ('ADMIN', 'MANAGE_API_KEYS')
ON CONFLICT DO NOTHING;
