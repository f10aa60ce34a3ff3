import { AppError } from '../../errors.ts';
import { inBreachCorpus, sha1Hex } from './breach-corpus.ts';
import type { Config } from '../../config/config.ts';
import type { Logger } from '../../logger.ts';
import { createPwnedRange, type PwnedRange } from './pwned-range.ts';

/**
 * The rule every new password meets (NIST SP 800-63B §3.1.1.2), on every path that sets one:
 * sign-up, password change, recovery/reset, admin create (API and CLI) and the first admin.
 *
 *   const v = await s.passwordPolicy.checkNewPassword({ password, identifier: email, identityId });
 *   if (!v.ok) … v.code === 'PASSWORD_REJECTED', v.reasons: PasswordRejection[]
 *   await s.passwordPolicy.assertNewPassword({ … })   // throws AppError PASSWORD_REJECTED (400, `reasons`)
 *
 * Length counts characters as entered (code points; no trimming, no truncation); every printable
 * character and the space are allowed; there are no composition rules and no expiry.
 */
export const PASSWORD_MAX_LENGTH = 256;

export const PASSWORD_REJECTIONS = [
  'TOO_SHORT',
  'TOO_LONG',
  'NOT_PRINTABLE', // a control character (NUL, escape, line break…)
  'BREACHED', // in the offline corpus or, when configured, the range API
  'CONTAINS_IDENTIFIER', // the email address or its local part
  'CONTAINS_PRODUCT_NAME',
] as const;
export type PasswordRejection = (typeof PASSWORD_REJECTIONS)[number];

export type PasswordVerdict = { ok: true } | { ok: false; code: 'PASSWORD_REJECTED'; reasons: PasswordRejection[]; minLength: number };

export interface NewPassword {
  password: string;
  /** The account's identifier (email address); its local part counts too. */
  identifier?: string | null;
  /** The account, when it exists: one with a second factor needs only PASSWORD_MIN_LENGTH. */
  identityId?: string | null;
  /** Known to have (true) or lack (false) a second factor; looked up from identityId when absent. */
  hasSecondFactor?: boolean;
}

export interface PasswordPolicyOptions {
  /** With a second factor (NIST: at least 8). */
  minLength: number;
  /** When the password is the only factor (NIST SP 800-63B-4 recommends 15). */
  minLengthSingleFactor: number;
  /** Words no password may contain, besides the identifier (the product's and the deployment's name). */
  productNames: string[];
  range?: PwnedRange | null;
  methodsOf?: (identityId: string) => Promise<unknown[]>;
}

export interface PasswordPolicy {
  /** Stops weak and known-breached passwords from being set; says every reason at once. */
  checkNewPassword(input: NewPassword): Promise<PasswordVerdict>;
  /** checkNewPassword that throws PASSWORD_REJECTED (400) with `reasons` and `minLength`. */
  assertNewPassword(input: NewPassword): Promise<void>;
  /** Whether a password (e.g. one just proven at sign-in) is known breached; fails open (false) when the range API is down. */
  isBreached(password: string): Promise<boolean>;
}

// Cc: C0/C1 controls (tab and line breaks included); also lone surrogates, which no keyboard types.
const CONTROL = /[\p{Cc}]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/u;

/** Words of an identifier a guesser would try: the whole address and, when it says something, its local part. */
function identifierWords(identifier: string | null | undefined): string[] {
  const id = identifier?.trim().toLowerCase();
  if (!id) return [];
  const local = id.includes('@') ? id.slice(0, id.lastIndexOf('@')) : id;
  return [...new Set([id, local])].filter((w) => [...w].length >= 3);
}

export function createPasswordPolicy(o: PasswordPolicyOptions): PasswordPolicy {
  if (o.minLength < 8 || o.minLengthSingleFactor < o.minLength || o.minLengthSingleFactor > 64)
    throw new Error('password policy: 8 ≤ minLength ≤ minLengthSingleFactor ≤ 64');
  const products = o.productNames.map((n) => n.trim().toLowerCase()).filter((n) => n.length >= 3);

  async function isBreached(password: string): Promise<boolean> {
    const sha1 = sha1Hex(password);
    if (inBreachCorpus(sha1)) return true;
    if (!o.range) return false;
    return ((await o.range.count(sha1)) ?? 0) > 0;
  }

  async function checkNewPassword(input: NewPassword): Promise<PasswordVerdict> {
    const pw = input.password;
    const length = [...pw].length;
    let second = input.hasSecondFactor;
    if (second === undefined && input.identityId && o.methodsOf) second = (await o.methodsOf(input.identityId)).length > 0;
    const minLength = second ? o.minLength : o.minLengthSingleFactor;
    const reasons: PasswordRejection[] = [];
    if (length < minLength) reasons.push('TOO_SHORT');
    if (length > PASSWORD_MAX_LENGTH) reasons.push('TOO_LONG');
    if (CONTROL.test(pw)) reasons.push('NOT_PRINTABLE');
    const lower = pw.toLowerCase();
    if (identifierWords(input.identifier).some((w) => lower.includes(w))) reasons.push('CONTAINS_IDENTIFIER');
    if (products.some((w) => lower.includes(w))) reasons.push('CONTAINS_PRODUCT_NAME');
    // Only a password that could otherwise be set is looked up (no range call for a refused one).
    if (!reasons.length && (await isBreached(pw))) reasons.push('BREACHED');
    return reasons.length ? { ok: false, code: 'PASSWORD_REJECTED', reasons, minLength } : { ok: true };
  }

  return {
    checkNewPassword,
    isBreached,
    async assertNewPassword(input) {
      const v = await checkNewPassword(input);
      if (!v.ok) throw new AppError('PASSWORD_REJECTED', { detail: describe(v.reasons, v.minLength), extra: { reasons: v.reasons, minLength: v.minLength } });
    },
  };
}

const TEXT: Record<PasswordRejection, (min: number) => string> = {
  TOO_SHORT: (min) => `use at least ${min} characters`,
  TOO_LONG: () => `use at most ${PASSWORD_MAX_LENGTH} characters`,
  NOT_PRINTABLE: () => 'use printable characters and spaces only',
  BREACHED: () => 'this password appears in lists of passwords exposed in data breaches; choose another',
  CONTAINS_IDENTIFIER: () => 'do not include your email address or user name',
  CONTAINS_PRODUCT_NAME: () => "do not include the service's name",
};

/** One sentence for the person choosing the password (the `reasons` are for programs). */
export const describe = (reasons: PasswordRejection[], min: number): string =>
  `This password cannot be used: ${reasons.map((r) => TEXT[r](min)).join('; ')}.`;

/** The policy as configured (PASSWORD_MIN_LENGTH*, PWNED_PASSWORDS_*): one construction for the server and the CLI. */
export function passwordPolicyFromConfig(
  config: Pick<Config, 'PASSWORD_MIN_LENGTH' | 'PASSWORD_MIN_LENGTH_SINGLE_FACTOR' | 'PWNED_PASSWORDS_URL' | 'PWNED_PASSWORDS_TIMEOUT_MS' | 'WEBAUTHN_RP_NAME'>,
  logger: Pick<Logger, 'warn'>,
  methodsOf?: (identityId: string) => Promise<unknown[]>,
): PasswordPolicy {
  return createPasswordPolicy({
    minLength: config.PASSWORD_MIN_LENGTH,
    minLengthSingleFactor: config.PASSWORD_MIN_LENGTH_SINGLE_FACTOR,
    productNames: ['Threshold', config.WEBAUTHN_RP_NAME],
    range: config.PWNED_PASSWORDS_URL ? createPwnedRange({ baseUrl: config.PWNED_PASSWORDS_URL, timeoutMs: config.PWNED_PASSWORDS_TIMEOUT_MS, logger }) : null,
    methodsOf,
  });
}
