import type { Queryable } from '../../db/db.ts';
import type { AuditEvent } from '../../audit/audit.ts';

/**
 * Re-evaluates the roles an identity holds through a provider's group mappings, from the groups
 * the IdP asserted at this login: a mapped role whose group is gone is taken away, a newly mapped
 * one given. Roles granted by hand (`source = 'manual'`) are never touched, and a role the user
 * already holds by hand stays manual. Answers the audit events of the changes (empty: nothing changed).
 * Mapped roles are global bindings (namespace ''); namespaced bindings stay an administrator's.
 * Stops a person removed from a group at the IdP from keeping its role here.
 */
export async function syncMappedRoles(q: Queryable, o: { identityId: string; providerId: string; providerSlug: string; groups: string[] }): Promise<AuditEvent[]> {
  const desired = await q.query<{ role: string; groups: string[] }>(
    `SELECT role, array_agg(group_name ORDER BY group_name) AS groups FROM idp_role_mappings
      WHERE provider_id = $1 AND active AND group_name = ANY($2::text[]) GROUP BY role`,
    [o.providerId, o.groups],
  );
  const want = new Map(desired.rows.map((r) => [r.role, r.groups]));
  const held = await q.query<{ role: string }>(
    "SELECT role FROM user_roles WHERE identity_id = $1 AND namespace = '' AND source = 'mapping' AND source_provider = $2",
    [o.identityId, o.providerId],
  );
  const have = new Set(held.rows.map((r) => r.role));
  const revoked: string[] = [];
  const granted: string[] = [];
  for (const role of have) {
    if (want.has(role)) continue;
    await q.query("DELETE FROM user_roles WHERE identity_id = $1 AND role = $2 AND namespace = '' AND source = 'mapping' AND source_provider = $3", [o.identityId, role, o.providerId]);
    revoked.push(role);
  }
  for (const role of want.keys()) {
    if (have.has(role)) continue;
    const r = await q.query(
      "INSERT INTO user_roles (identity_id, role, namespace, source, source_provider) VALUES ($1, $2, '', 'mapping', $3) ON CONFLICT (identity_id, role, namespace) DO NOTHING",
      [o.identityId, role, o.providerId],
    );
    if (r.rowCount === 1) granted.push(role);
  }
  if (!granted.length && !revoked.length) return [];
  // The same audit type as an administrator's binding change, with the IdP as actor and reason.
  return [{ type: 'user.roles_changed', actor: `idp:${o.providerSlug}`, subject: o.identityId, reason: 'IDP_MAPPING', data: { provider: o.providerSlug, granted: granted.sort(), revoked: revoked.sort(), groups: [...o.groups].sort().slice(0, 50) } }];
}
