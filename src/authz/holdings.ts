import { AppError } from '../errors.ts';
import type { AnyPrincipal } from '../principals/types.ts';
import { ADMIN_ROLE, type RbacSnapshot } from '../rbac/snapshot.ts';

/**
 * What a caller may pass on to others (escalation guards of the admin routes): the permissions
 * the caller holds where asked, and whether it holds ADMIN there.
 *
 * For a session that is the identity's own grants. For a machine credential it is what the
 * credential may actually do: its authority's grants (an API key: its creator's, not the grants of
 * the identity it stands for), cut down to its own permission list when it has one — a key limited
 * to MANAGE_USERS is never "an ADMIN", even when its creator is.
 */
export interface Holdings {
  admin: boolean;
  permissions: Set<string>;
}

export async function holdingsOf(snapshot: RbacSnapshot, p: Pick<AnyPrincipal, 'kind' | 'identityId'> & { authority?: string; scope?: readonly string[] }, namespace?: string): Promise<Holdings> {
  const subject = p.kind === 'session' ? p.identityId : (p.authority ?? p.identityId);
  const [r, perms] = await Promise.all([snapshot.resolve(subject, ADMIN_ROLE, namespace), snapshot.permissionsOf(subject, namespace)]);
  const names = new Set(perms.map((x) => x.name));
  if (p.kind === 'session' || !p.scope) return { admin: r.admin, permissions: names };
  const scope = new Set(p.scope);
  return { admin: false, permissions: new Set([...names].filter((n) => scope.has(n))) };
}

/** Stops a caller from giving (or taking from someone) permissions it does not hold itself, where asked. */
export async function assertHolds(snapshot: RbacSnapshot, p: Parameters<typeof holdingsOf>[1], names: Iterable<string>, o: { namespace?: string; adminNeeded?: boolean; what: string }): Promise<void> {
  const h = await holdingsOf(snapshot, p, o.namespace);
  if (h.admin) return;
  if (o.adminNeeded) throw new AppError('PERMISSION_DENIED', { detail: `${o.what}: only an ${ADMIN_ROLE}${o.namespace ? ` of namespace ${o.namespace}` : ''} may do this` });
  const beyond = [...new Set(names)].filter((n) => !h.permissions.has(n)).sort();
  if (beyond.length) throw new AppError('PERMISSION_DENIED', { detail: `${o.what}: you do not hold ${beyond.join(', ')}${o.namespace ? ` in namespace ${o.namespace}` : ''}` });
}
