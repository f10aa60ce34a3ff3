import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { Queryable } from '../db/db.ts';
import { DEFAULT_POLICY, loadActivePolicy, PolicyDocumentSchema, type PolicyDocument } from '../risk/policy.ts';

export class PolicySourceError extends Error {
  override name = 'PolicySourceError';
}

export function parsePolicy(raw: unknown, where: string): PolicyDocument {
  const r = PolicyDocumentSchema.safeParse(raw);
  if (!r.success) throw new PolicySourceError(`${where} is not a valid policy: ${z.prettifyError(r.error)}`);
  return r.data;
}

/** A stored policy version, or the active one; the DEFAULT_POLICY when none is active. */
export async function policyFromDb(db: Queryable, name: string): Promise<PolicyDocument> {
  if (name === 'active') return loadActivePolicy(db);
  const { rows } = await db.query<{ document: unknown }>('SELECT document FROM risk_policies WHERE version = $1', [name]);
  if (!rows[0]) throw new PolicySourceError(`no stored policy version ${name}`);
  const doc = typeof rows[0].document === 'string' ? JSON.parse(rows[0].document) : rows[0].document;
  return parsePolicy(doc, `stored policy ${name}`);
}

/**
 * `--policy` for the CLI: `default`, a JSON file, or (with a database) `active` or a stored
 * version name.
 */
export async function resolvePolicy(arg: string, db: Queryable | null): Promise<PolicyDocument> {
  if (arg === 'default') return DEFAULT_POLICY;
  if (arg.endsWith('.json') || arg.includes('/')) {
    let text: string;
    try {
      text = await readFile(arg, 'utf8');
    } catch (e) {
      throw new PolicySourceError(`cannot read ${arg}: ${(e as Error).message}`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new PolicySourceError(`${arg} is not JSON: ${(e as Error).message}`);
    }
    return parsePolicy(raw, arg);
  }
  if (!db) throw new PolicySourceError(`policy ${arg}: give a JSON file or "default" (stored versions need DATABASE_URL)`);
  return policyFromDb(db, arg);
}
