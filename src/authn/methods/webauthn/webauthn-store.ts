import { randomUUID } from 'node:crypto';
import type { Clock } from '../../../clock.ts';
import type { Db, Queryable } from '../../../db/db.ts';

/** The SQL behind the WebAuthn service: challenges and credentials. No verification here. */

export type ChallengePurpose = 'registration' | 'authentication';
export type UserVerification = 'required' | 'preferred';
export type DeviceType = 'singleDevice' | 'multiDevice';

export interface ChallengeRecord {
  challenge: string;
  identityId: string | null;
  userVerification: UserVerification;
  passkey: boolean;
}

export interface CredentialRecord {
  id: string;
  identityId: string;
  credentialId: string;
  publicKey: string;
  counter: number;
  transports: string[];
  deviceType: DeviceType;
  backedUp: boolean;
  uvInitialized: boolean;
  aaguid: string | null;
  label: string;
  discoverable: boolean;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export type NewCredential = Omit<CredentialRecord, 'id' | 'createdAt' | 'lastUsedAt'>;

type CredentialRow = {
  id: string;
  identity_id: string;
  credential_id: string;
  public_key: string;
  counter: string | number;
  transports: string[] | string | null;
  device_type: DeviceType;
  backed_up: boolean;
  uv_initialized: boolean;
  aaguid: string | null;
  label: string;
  discoverable: boolean;
  created_at: Date;
  last_used_at: Date | null;
};

const COLUMNS = `id, identity_id, credential_id, public_key, counter, transports, device_type, backed_up,
  uv_initialized, aaguid, label, discoverable, created_at, last_used_at`;

function toRecord(r: CredentialRow): CredentialRecord {
  const transports = typeof r.transports === 'string' ? (JSON.parse(r.transports) as string[]) : (r.transports ?? []);
  return {
    id: r.id,
    identityId: r.identity_id,
    credentialId: r.credential_id,
    publicKey: r.public_key,
    // bigint arrives as a string from node-postgres; a signature counter is 32-bit, so it fits.
    counter: Number(r.counter),
    transports,
    deviceType: r.device_type,
    backedUp: r.backed_up,
    uvInitialized: r.uv_initialized,
    aaguid: r.aaguid,
    label: r.label,
    discoverable: r.discoverable,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
  };
}

export interface WebAuthnStore {
  /** Store a challenge for a flow; any earlier live challenge of the flow and purpose dies with it. */
  issueChallenge(c: ChallengeRecord & { purpose: ChallengePurpose; flowKey: string; ttlSeconds: number }): Promise<void>;
  /**
   * Spend every live challenge of the flow and purpose at once and return them. Of concurrent
   * callers exactly one gets the rows (row locks + `consumed_at IS NULL`), so a challenge can back
   * at most one verification attempt, successful or not.
   */
  consumeChallenges(flowKey: string, purpose: ChallengePurpose): Promise<ChallengeRecord[]>;
  credentialsOf(identityId: string): Promise<CredentialRecord[]>;
  byCredentialId(credentialId: string): Promise<CredentialRecord | null>;
  /** Insert; a duplicate credential id raises the driver's unique violation. */
  insertCredential(c: NewCredential, q?: Queryable): Promise<CredentialRecord>;
  /**
   * Move the counter forward and record the use, only if the stored counter is still below the new
   * one (or both are 0: an authenticator without a counter). False when another assertion won.
   */
  recordUse(u: { id: string; counter: number; backedUp: boolean; userVerified: boolean }): Promise<boolean>;
  rename(identityId: string, id: string, label: string, q?: Queryable): Promise<boolean>;
  remove(identityId: string, id: string, q?: Queryable): Promise<boolean>;
}

export function createWebAuthnStore(db: Db, clock: Clock): WebAuthnStore {
  const now = () => new Date(clock.now());
  return {
    async issueChallenge(c) {
      const at = clock.now();
      await db.tx(async (q) => {
        await q.query(
          `UPDATE webauthn_challenges SET consumed_at = $3
            WHERE flow_key = $1 AND purpose = $2 AND consumed_at IS NULL`,
          [c.flowKey, c.purpose, new Date(at)],
        );
        await q.query(
          `INSERT INTO webauthn_challenges
             (id, purpose, flow_key, identity_id, challenge, user_verification, passkey, expires_at, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
          [
            randomUUID(),
            c.purpose,
            c.flowKey,
            c.identityId,
            c.challenge,
            c.userVerification,
            c.passkey,
            new Date(at + c.ttlSeconds * 1000),
            new Date(at),
          ],
        );
      });
    },

    async consumeChallenges(flowKey, purpose) {
      const at = now();
      const { rows } = await db.query<{
        challenge: string;
        identity_id: string | null;
        user_verification: UserVerification;
        passkey: boolean;
      }>(
        `UPDATE webauthn_challenges SET consumed_at = $3
          WHERE flow_key = $1 AND purpose = $2 AND consumed_at IS NULL AND expires_at > $3
          RETURNING challenge, identity_id, user_verification, passkey`,
        [flowKey, purpose, at],
      );
      return rows.map((r) => ({
        challenge: r.challenge,
        identityId: r.identity_id,
        userVerification: r.user_verification,
        passkey: r.passkey,
      }));
    },

    async credentialsOf(identityId) {
      const { rows } = await db.query<CredentialRow>(
        `SELECT ${COLUMNS} FROM webauthn_credentials WHERE identity_id = $1 ORDER BY created_at, id`,
        [identityId],
      );
      return rows.map(toRecord);
    },

    async byCredentialId(credentialId) {
      const { rows } = await db.query<CredentialRow>(
        `SELECT ${COLUMNS} FROM webauthn_credentials WHERE credential_id = $1`,
        [credentialId],
      );
      return rows[0] ? toRecord(rows[0]) : null;
    },

    async insertCredential(c, q = db) {
      const { rows } = await q.query<CredentialRow>(
        `INSERT INTO webauthn_credentials
           (id, identity_id, credential_id, public_key, counter, transports, device_type, backed_up,
            uv_initialized, aaguid, label, discoverable, created_at)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10, $11, $12, $13)
         RETURNING ${COLUMNS}`,
        [
          randomUUID(),
          c.identityId,
          c.credentialId,
          c.publicKey,
          c.counter,
          JSON.stringify(c.transports),
          c.deviceType,
          c.backedUp,
          c.uvInitialized,
          c.aaguid,
          c.label,
          c.discoverable,
          now(),
        ],
      );
      return toRecord(rows[0]);
    },

    async recordUse(u) {
      const r = await db.query(
        `UPDATE webauthn_credentials
            SET counter = $2, backed_up = $3, uv_initialized = uv_initialized OR $4, last_used_at = $5
          WHERE id = $1 AND (counter < $2 OR (counter = 0 AND $2 = 0))`,
        [u.id, u.counter, u.backedUp, u.userVerified, now()],
      );
      return r.rowCount === 1;
    },

    async rename(identityId, id, label, q = db) {
      const r = await q.query('UPDATE webauthn_credentials SET label = $3 WHERE id = $1 AND identity_id = $2', [
        id,
        identityId,
        label,
      ]);
      return r.rowCount === 1;
    },

    async remove(identityId, id, q = db) {
      const r = await q.query('DELETE FROM webauthn_credentials WHERE id = $1 AND identity_id = $2', [id, identityId]);
      return r.rowCount === 1;
    },
  };
}
