import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { Audit } from '../../../audit/audit.ts';
import type { Clock } from '../../../clock.ts';
import type { Db } from '../../../db/db.ts';
import { isUniqueViolation } from '../../../db/db.ts';
import { AppError } from '../../../errors.ts';
import { createWebAuthnStore } from './webauthn-store.ts';

/**
 * @simplewebauthn/server and its crypto dependencies cost ~28 MB of a process: loaded on the
 * first WebAuthn ceremony, not at start (the module system keeps the one copy).
 */
const simplewebauthn = () => import('@simplewebauthn/server');
import type { CredentialRecord, DeviceType, UserVerification } from './webauthn-store.ts';

export type { DeviceType, UserVerification } from './webauthn-store.ts';

/** Why an assertion was refused: for audit and logs only, never shown to the client. */
export type WebAuthnFailureReason = 'CHALLENGE' | 'UNKNOWN_CREDENTIAL' | 'WRONG_USER' | 'SIGNATURE' | 'COUNTER' | 'UV_REQUIRED';

export type WebAuthnAuthResult =
  | {
      ok: true;
      identityId: string;
      /** Our id of the credential (as in `list()`), not the authenticator's credential id. */
      credentialId: string;
      userVerified: boolean;
      deviceType: DeviceType;
      backedUp: boolean;
    }
  | {
      ok: false;
      reason: WebAuthnFailureReason;
      /** Finer private cause, e.g. `origin`, `rp_id`, `user_handle`, `regressed`, `race`, `rejected` (by the verifier). */
      detail?: string;
    };

export interface WebAuthnCredentialView {
  id: string;
  label: string;
  deviceType: DeviceType;
  backedUp: boolean;
  discoverable: boolean;
  transports: string[];
  aaguid: string | null;
  createdAt: string;
  lastUsedAt: string | null;
}

export interface WebAuthnService {
  registrationOptions(a: {
    identityId: string;
    email: string;
    displayName: string;
    flowKey: string;
    passkey: boolean;
  }): Promise<PublicKeyCredentialCreationOptionsJSON>;
  /** Throws WEBAUTHN_FAILED on any refusal (the private detail says which). */
  register(a: {
    identityId: string;
    flowKey: string;
    response: RegistrationResponseJSON;
    label?: string;
  }): Promise<{ id: string; label: string; deviceType: DeviceType; backedUp: boolean; discoverable: boolean }>;
  /** Throws MFA_FACTOR_NOT_FOUND when identityId is given and the user has no credential. */
  authenticationOptions(a: {
    flowKey: string;
    identityId: string | null;
    userVerification: UserVerification;
  }): Promise<PublicKeyCredentialRequestOptionsJSON>;
  authenticate(a: {
    flowKey: string;
    identityId: string | null;
    response: AuthenticationResponseJSON;
  }): Promise<WebAuthnAuthResult>;
  list(identityId: string): Promise<WebAuthnCredentialView[]>;
  rename(identityId: string, id: string, label: string): Promise<void>;
  remove(identityId: string, id: string): Promise<void>;
}

export { amrForWebAuthn, type WebAuthnAmr } from './webauthn-amr.ts';

/**
 * Pinned so a credential registered on one Node version verifies on every supported one (the
 * library's default adds ML-DSA where the runtime has it). ES256, EdDSA, RS256.
 */
const ALGORITHMS = [-7, -8, -257];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LABEL_MAX = 64;

/** WebAuthn user.id: the identity's 16 UUID bytes (opaque, no personal data). */
const userHandleOf = (identityId: string): Buffer => Buffer.from(identityId.replace(/-/g, ''), 'hex');

/** The challenge and origin the client says it signed; null when clientDataJSON is not JSON. */
function readClientData(b64: unknown): { type?: unknown; challenge?: unknown; origin?: unknown } | null {
  if (typeof b64 !== 'string') return null;
  try {
    const v: unknown = JSON.parse(Buffer.from(b64, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function cleanLabel(label: string): string {
  const l = label.trim();
  if (l.length < 1 || l.length > LABEL_MAX || /[\u0000-\u001f\u007f]/.test(l)) {
    throw new AppError('VALIDATION_FAILED', { detail: `A label has 1 to ${LABEL_MAX} printable characters.` });
  }
  return l;
}

const view = (c: CredentialRecord): WebAuthnCredentialView => ({
  id: c.id,
  label: c.label,
  deviceType: c.deviceType,
  backedUp: c.backedUp,
  discoverable: c.discoverable,
  transports: c.transports,
  aaguid: c.aaguid,
  createdAt: c.createdAt.toISOString(),
  lastUsedAt: c.lastUsedAt ? c.lastUsedAt.toISOString() : null,
});

export function createWebAuthnService(deps: {
  db: Db;
  clock: Clock;
  audit: Audit;
  rpID: string;
  rpName: string;
  origins: string[];
  challengeTtlSeconds?: number;
}): WebAuthnService {
  const { db, audit, rpID, rpName, origins } = deps;
  const ttl = deps.challengeTtlSeconds ?? 300;
  const store = createWebAuthnStore(db, deps.clock);
  const rpIdHash = createHash('sha256').update(rpID).digest();

  const fail = (privateDetail: string, cause?: unknown) => new AppError('WEBAUTHN_FAILED', { privateDetail, cause });

  return {
    async registrationOptions({ identityId, email, displayName, flowKey, passkey }) {
      const existing = await store.credentialsOf(identityId);
      const options = await (await simplewebauthn()).generateRegistrationOptions({
        rpName,
        rpID,
        userName: email,
        userID: new Uint8Array(userHandleOf(identityId)),
        userDisplayName: displayName,
        challenge: new Uint8Array(randomBytes(32)),
        timeout: ttl * 1000,
        attestationType: 'none',
        excludeCredentials: existing.map((c) => ({ id: c.credentialId, transports: c.transports })),
        // A passkey signs the user in on its own, so it must be discoverable and must verify the user.
        authenticatorSelection: passkey
          ? { residentKey: 'required', requireResidentKey: true, userVerification: 'required' }
          : { residentKey: 'preferred', userVerification: 'preferred' },
        supportedAlgorithmIDs: ALGORITHMS,
      });
      await store.issueChallenge({
        purpose: 'registration',
        flowKey,
        identityId,
        challenge: options.challenge,
        userVerification: passkey ? 'required' : 'preferred',
        passkey,
        ttlSeconds: ttl,
      });
      return options;
    },

    /** Stops registration replays, cross-flow challenges, phishing origins and credential-id squatting. */
    async register({ identityId, flowKey, response, label }) {
      const issued = await store.consumeChallenges(flowKey, 'registration');
      const clientChallenge = readClientData(response?.response?.clientDataJSON)?.challenge;
      const ch = issued.find((c) => c.challenge === clientChallenge);
      if (!ch) throw fail('no live registration challenge of this flow matches the response');
      if (ch.identityId !== identityId) throw fail('challenge was issued to another identity');
      const name = label === undefined ? (ch.passkey ? 'Passkey' : 'Security key') : cleanLabel(label);

      let info;
      try {
        const v = await (await simplewebauthn()).verifyRegistrationResponse({
          response,
          expectedChallenge: ch.challenge,
          expectedOrigin: origins,
          expectedRPID: rpID,
          requireUserVerification: ch.userVerification === 'required',
          supportedAlgorithmIDs: ALGORITHMS,
        });
        if (!v.verified) throw new Error('attestation not verified');
        info = v.registrationInfo;
      } catch (e) {
        throw fail(`registration not verified: ${(e as Error).message}`, e);
      }
      const rk = response.clientExtensionResults?.credProps?.rk;
      if (ch.passkey && rk === false) throw fail('passkey requested but the credential is not discoverable');

      try {
        const saved = await db.tx(async (q) => {
          const c = await store.insertCredential(
            {
              identityId,
              credentialId: info.credential.id,
              publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
              counter: info.credential.counter,
              transports: info.credential.transports ?? [],
              deviceType: info.credentialDeviceType,
              backedUp: info.credentialBackedUp,
              uvInitialized: info.userVerified,
              aaguid: info.aaguid,
              label: name,
              discoverable: rk ?? ch.passkey,
            },
            q,
          );
          await audit.append(
            {
              type: 'mfa.enrolled',
              actor: identityId,
              subject: identityId,
              reason: 'WEBAUTHN',
              data: { credential: c.id, deviceType: c.deviceType, backedUp: c.backedUp, discoverable: c.discoverable },
            },
            q,
          );
          return c;
        });
        return {
          id: saved.id,
          label: saved.label,
          deviceType: saved.deviceType,
          backedUp: saved.backedUp,
          discoverable: saved.discoverable,
        };
      } catch (e) {
        if (isUniqueViolation(e)) throw fail('credential id already registered', e);
        throw e;
      }
    },

    async authenticationOptions({ flowKey, identityId, userVerification }) {
      const creds = identityId ? await store.credentialsOf(identityId) : [];
      // An empty allow-list would turn a second-factor prompt into "any passkey on this device".
      if (identityId && creds.length === 0) throw new AppError('MFA_FACTOR_NOT_FOUND');
      const options = await (await simplewebauthn()).generateAuthenticationOptions({
        rpID,
        challenge: new Uint8Array(randomBytes(32)),
        timeout: ttl * 1000,
        userVerification,
        allowCredentials: creds.map((c) => ({ id: c.credentialId, transports: c.transports })),
      });
      await store.issueChallenge({
        purpose: 'authentication',
        flowKey,
        identityId,
        challenge: options.challenge,
        userVerification,
        passkey: false,
        ttlSeconds: ttl,
      });
      return options;
    },

    /**
     * Stops replayed or cross-flow assertions (single-use challenge bound to the flow), phishing
     * (origin and rpID), use of another user's key, cloned authenticators (counter) and a missing
     * PIN/biometric where one is required.
     */
    async authenticate({ flowKey, identityId, response }) {
      const issued = await store.consumeChallenges(flowKey, 'authentication');
      const client = readClientData(response?.response?.clientDataJSON);
      const ch = issued.find((c) => c.challenge === client?.challenge);
      if (!ch) return { ok: false, reason: 'CHALLENGE' };
      if (ch.identityId !== identityId) return { ok: false, reason: 'CHALLENGE', detail: 'identity' };

      const cred = typeof response.id === 'string' ? await store.byCredentialId(response.id) : null;
      if (!cred) return { ok: false, reason: 'UNKNOWN_CREDENTIAL' };
      if (identityId !== null && cred.identityId !== identityId) return { ok: false, reason: 'WRONG_USER' };
      const handle = response.response.userHandle;
      if (handle) {
        const given = Buffer.from(handle, 'base64url');
        const owner = userHandleOf(cred.identityId);
        if (given.length !== owner.length || !timingSafeEqual(given, owner)) {
          return { ok: false, reason: 'WRONG_USER', detail: 'user_handle' };
        }
      }

      // The library checks these too; checking first gives the audit a precise cause.
      if (client?.type !== 'webauthn.get') return { ok: false, reason: 'SIGNATURE', detail: 'type' };
      if (typeof client.origin !== 'string' || !origins.includes(client.origin)) {
        return { ok: false, reason: 'SIGNATURE', detail: 'origin' };
      }
      const authData = Buffer.from(String(response.response.authenticatorData), 'base64url');
      if (authData.length < 37 || !timingSafeEqual(authData.subarray(0, 32), rpIdHash)) {
        return { ok: false, reason: 'SIGNATURE', detail: 'rp_id' };
      }

      let info;
      try {
        const v = await (await simplewebauthn()).verifyAuthenticationResponse({
          response,
          expectedChallenge: ch.challenge,
          expectedOrigin: origins,
          expectedRPID: rpID,
          // counter 0 switches off the library's own counter check, which runs before the
          // signature: a clone alarm must only ever fire for a genuinely signed assertion.
          credential: {
            id: cred.credentialId,
            publicKey: new Uint8Array(Buffer.from(cred.publicKey, 'base64url')),
            counter: 0,
            transports: cred.transports,
          },
          // UV is checked below, after the signature, so the refusal names the real cause.
          requireUserVerification: false,
        });
        if (!v.verified) return { ok: false, reason: 'SIGNATURE', detail: 'signature' };
        info = v.authenticationInfo;
      } catch {
        return { ok: false, reason: 'SIGNATURE', detail: 'rejected' };
      }

      const cloneSuspected = async (detail: string) => {
        await audit.append({
          type: 'webauthn.clone_suspected',
          subject: cred.identityId,
          reason: 'COUNTER',
          data: { credential: cred.id, storedCounter: cred.counter, presentedCounter: info.newCounter, detail },
        });
        return { ok: false as const, reason: 'COUNTER' as const, detail };
      };
      // WebAuthn §7.2 step 21: with either counter non-zero, a counter that does not go up means
      // two authenticators hold this key.
      if ((info.newCounter > 0 || cred.counter > 0) && info.newCounter <= cred.counter) {
        return cloneSuspected('regressed');
      }
      if (ch.userVerification === 'required' && !info.userVerified) return { ok: false, reason: 'UV_REQUIRED' };
      const advanced = await store.recordUse({
        id: cred.id,
        counter: info.newCounter,
        backedUp: info.credentialBackedUp,
        userVerified: info.userVerified,
      });
      // Another assertion moved the counter between our read and this write: same signal.
      if (!advanced) return cloneSuspected('race');
      return {
        ok: true,
        identityId: cred.identityId,
        credentialId: cred.id,
        userVerified: info.userVerified,
        // BE cannot change over a credential's life; if it ever differs, take the weaker reading.
        deviceType:
          cred.deviceType === 'multiDevice' || info.credentialDeviceType === 'multiDevice' ? 'multiDevice' : 'singleDevice',
        backedUp: info.credentialBackedUp,
      };
    },

    async list(identityId) {
      return (await store.credentialsOf(identityId)).map(view);
    },

    async rename(identityId, id, label) {
      const l = cleanLabel(label);
      if (!UUID.test(id)) throw new AppError('MFA_FACTOR_NOT_FOUND');
      await db.tx(async (q) => {
        if (!(await store.rename(identityId, id, l, q))) throw new AppError('MFA_FACTOR_NOT_FOUND');
        await audit.append({ type: 'mfa.renamed', actor: identityId, subject: identityId, reason: 'WEBAUTHN', data: { credential: id } }, q);
      });
    },

    async remove(identityId, id) {
      if (!UUID.test(id)) throw new AppError('MFA_FACTOR_NOT_FOUND');
      await db.tx(async (q) => {
        if (!(await store.remove(identityId, id, q))) throw new AppError('MFA_FACTOR_NOT_FOUND');
        await audit.append({ type: 'mfa.removed', actor: identityId, subject: identityId, reason: 'WEBAUTHN', data: { credential: id } }, q);
      });
    },
  };
}
