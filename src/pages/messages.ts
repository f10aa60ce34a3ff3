/**
 * What a person reads when the API refuses something: one sentence per problem code, in plain
 * words, saying what to do next. A code not listed falls back to a general sentence (never the
 * API's internals).
 */
const SENTENCES: Record<string, string> = {
  INVALID_CREDENTIALS: 'That email address and password do not match. Check them and try again.',
  ACCOUNT_LOCKED: 'Too many failed attempts. Wait a while before trying again, or ask an administrator to unlock your account.',
  LOGIN_DENIED: 'This sign-in was refused.',
  MFA_CODE_INVALID: 'That code is not right, or it was already used. Check it and try again.',
  MFA_CODE_EXPIRED: 'That code has expired. Ask for a new one.',
  MFA_CODE_LOCKED: 'Too many wrong codes. Choose another way to confirm, or start again.',
  MFA_CHALLENGE_NOT_FOUND: 'No code was sent yet. Ask for one first.',
  CODE_RESEND_TOO_SOON: 'A code was sent a moment ago. Wait a little before asking for another.',
  DELIVERY_FAILED: 'We could not send the code. Try again, or choose another way to confirm.',
  WEBAUTHN_FAILED: 'Your security key or passkey could not be checked. Try again, or choose another way.',
  FLOW_NOT_FOUND: 'This sign-in is no longer available. Please start again.',
  FLOW_EXPIRED: 'This sign-in took too long and has expired. Please start again.',
  FLOW_CONFLICT: 'This page was used in another tab at the same time. Reload it and try again.',
  INVALID_EVENT: 'This step is already done. Continue from the page as it is now.',
  RATE_LIMITED: 'Too many attempts from here. Wait a minute and try again.',
  RATE_LIMIT_UNAVAILABLE: 'Sign-in is unavailable for a moment. Try again shortly.',
  SERVICE_UNAVAILABLE: 'Something we depend on is unavailable. Try again shortly.',
  CROSS_SITE_REQUEST: 'This form is out of date or came from another site. Reload the page and try again.',
  VALIDATION_FAILED: 'Something in the form is missing or not valid. Check it and try again.',
  UNAUTHENTICATED: 'Please sign in first.',
  STEP_UP_REQUIRED: 'Please confirm it is you before making this change.',
  MFA_ENROLMENT_REQUIRED: 'This change needs a second factor. Add an authenticator app or a passkey first.',
  MFA_FACTOR_NOT_FOUND: 'That sign-in method no longer exists. Reload the page.',
  MFA_ALREADY_CONFIRMED: 'That authenticator app is already set up.',
  SESSION_LIMIT_REACHED: 'You are signed in on too many devices. Sign out elsewhere first.',
  NOT_FOUND: 'That no longer exists. Reload the page.',
  PERMISSION_DENIED: 'You are not allowed to do this.',
  IDP_NOT_FOUND: 'That organisation does not sign in here. Enter your email address instead.',
  IDP_UNAVAILABLE: 'Your organisation’s sign-in is unavailable for a moment. Try again shortly.',
};

export const sentenceFor = (code: string | undefined | null): string =>
  (code && SENTENCES[code]) || 'Something went wrong. Please try again.';

/**
 * A problem's sentence: a refused sign-in carries its own plain-language `detail` (said only
 * after the person proved who they are), which is more useful than the general one.
 */
export function problemSentence(p: { code?: string; detail?: string } | null | undefined): string {
  if (p?.code === 'LOGIN_DENIED' && typeof p.detail === 'string') return p.detail;
  return sentenceFor(p?.code);
}

/** Methods as a person knows them. */
export const METHOD_NAMES: Record<string, string> = {
  webauthn: 'Security key or passkey',
  totp: 'Authenticator app',
  sms: 'Text message to your phone',
  email: 'Email to your address',
  recovery_code: 'A recovery code',
};
