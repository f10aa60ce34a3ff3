/**
 * The error registry: a stable UPPER_SNAKE code maps to an HTTP status and a public title.
 * Only src/http/present.ts turns errors into responses; tests assert on `code`.
 */
export const ERRORS = {
  VALIDATION_FAILED: { status: 400, title: 'The request is not valid.' },
  INVALID_CREDENTIALS: { status: 401, title: 'The identifier or password is incorrect.' },
  UNAUTHENTICATED: { status: 401, title: 'Authentication is required.' },
  STEP_UP_REQUIRED: { status: 401, title: 'Stronger or fresher authentication is required.' },
  PERMISSION_DENIED: { status: 403, title: 'You do not have this permission.' },
  /** Told only to administrators: the permission named does not exist (a typo in a proxy's configuration). */
  PERMISSION_UNKNOWN: { status: 403, title: 'No permission of this name exists.' },
  /** A state-changing request from another site (or a sibling subdomain) with the user's cookies. */
  CROSS_SITE_REQUEST: { status: 403, title: 'This request did not come from an allowed origin.' },
  ACCOUNT_LOCKED: { status: 423, title: 'The account is locked.' },
  FLOW_NOT_FOUND: { status: 404, title: 'The flow does not exist.' },
  NOT_FOUND: { status: 404, title: 'Not found.' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'This method is not allowed here; see the Allow header.' },
  FLOW_EXPIRED: { status: 410, title: 'The flow has expired; start a new one.' },
  FLOW_CONFLICT: { status: 409, title: 'The flow was changed by another request; reload it.' },
  INVALID_EVENT: { status: 409, title: 'The flow does not accept this event in its current step.' },
  CONFLICT: { status: 409, title: 'The resource already exists.' },
  SESSION_LIMIT_REACHED: { status: 409, title: 'Too many active sessions; sign out elsewhere first.' },
  /** A new password the policy refuses (src/authn/passwords/policy.ts); `reasons` say why. */
  PASSWORD_REJECTED: { status: 400, title: 'This password cannot be used.' },
  /** Sign-up is off (SIGNUP_ENABLED=off, the default). */
  SIGNUP_DISABLED: { status: 404, title: 'Self-service sign-up is not available here.' },
  /** The address's domain is not one sign-up is allowed for (SIGNUP_ALLOWED_DOMAINS). */
  EMAIL_DOMAIN_NOT_ALLOWED: { status: 400, title: 'Sign-up is not open to this email domain.' },
  /** A throwaway-mail domain (the disposable-email deny list). */
  EMAIL_DISPOSABLE: { status: 400, title: 'Use a permanent email address, not a disposable one.' },
  /** The risk assessment of a sign-up refused it. */
  SIGNUP_DENIED: { status: 403, title: 'The sign-up was refused.' },
  MFA_CODE_INVALID: { status: 400, title: 'The code is incorrect or was already used.' },
  MFA_FACTOR_NOT_FOUND: { status: 404, title: 'The factor does not exist.' },
  MFA_ALREADY_CONFIRMED: { status: 409, title: 'The factor is already confirmed.' },
  /** Any refused WebAuthn ceremony; which check failed stays private (audit/logs). */
  WEBAUTHN_FAILED: { status: 400, title: 'The security key or passkey could not be verified.' },
  MFA_CODE_EXPIRED: { status: 400, title: 'The code has expired; ask for a new one.' },
  MFA_CODE_LOCKED: { status: 423, title: 'Too many wrong codes; choose another method or start again.' },
  MFA_CHALLENGE_NOT_FOUND: { status: 404, title: 'No code was sent for this step; ask for one first.' },
  CODE_RESEND_TOO_SOON: { status: 429, title: 'Wait a little before asking for another code.' },
  DELIVERY_FAILED: { status: 503, title: 'The message could not be delivered; try again or choose another method.' },
  LOGIN_DENIED: { status: 403, title: 'The sign-in was refused.' },
  /** A recovery link that is wrong, used or expired (said the same way for each). */
  RECOVERY_LINK_INVALID: { status: 400, title: 'This recovery link is not valid, was already used or has expired.' },
  /** The recovery was refused after the link was proven (risk, or a risky attempt on an account without a second factor). */
  RECOVERY_DENIED: { status: 403, title: 'The account recovery was refused.' },
  MFA_ENROLMENT_REQUIRED: { status: 403, title: 'No second factor can satisfy this request; enrol one first.' },
  /** An API key that fails its shape or checksum: refused before any lookup. */
  API_KEY_MALFORMED: { status: 400, title: 'The API key is malformed.' },
  /** A valid API key used from an address outside its allow-list. */
  API_KEY_ADDRESS_REFUSED: { status: 403, title: 'This API key may not be used from this address.' },
  /** No enabled identity provider has this slug. */
  IDP_NOT_FOUND: { status: 404, title: 'No such identity provider.' },
  /** The identity provider answered with an error (the person cancelled, or it refused them). */
  IDP_ERROR: { status: 403, title: 'The identity provider did not sign you in.' },
  /** The IdP's answer failed a check (state, issuer, nonce, PKCE, code, signature); nothing was signed in. */
  IDP_RESPONSE_INVALID: { status: 400, title: 'The answer from the identity provider could not be verified; start again.' },
  IDP_UNAVAILABLE: { status: 503, title: 'The identity provider cannot be reached; try again later.' },
  /** The IdP vouched for someone who has no account here (and none may be created or linked). */
  FEDERATION_REFUSED: { status: 403, title: 'This sign-in is not linked to an account here; ask an administrator.' },
  /** Two credentials in one request (X-API-Key beside an Authorization header, or a repeated one): which one speaks is never guessed. */
  CREDENTIALS_CONFLICT: { status: 400, title: 'The request carries more than one credential; send exactly one.' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'The request body is too large.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Send application/json.' },
  RATE_LIMITED: { status: 429, title: 'Too many requests.' },
  SERVICE_UNAVAILABLE: { status: 503, title: 'A dependency is unavailable; try again later.' },
  /** The rate-limit store (Redis) cannot answer: sign-in fails closed rather than unlimited. */
  RATE_LIMIT_UNAVAILABLE: { status: 503, title: 'Sign-in is temporarily unavailable; try again shortly.' },
  /** A page cursor that this API did not hand out (forged, truncated or from another list). */
  INVALID_CURSOR: { status: 400, title: 'The cursor is not one this list returned; start from the first page.' },
  /** Deleting a role that a user still holds. */
  ROLE_IN_USE: { status: 409, title: 'The role is still held by users; remove it from them first.' },
  /** An administrator deleting, disabling or locking their own account. */
  SELF_ACTION_REFUSED: { status: 409, title: 'You cannot do this to your own account.' },
  INTERNAL: { status: 500, title: 'An internal error occurred.' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** 5xx answers whose title is safe and useful to show (the client can act on them). */
const EXPOSED_5XX: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['SERVICE_UNAVAILABLE', 'DELIVERY_FAILED', 'RATE_LIMIT_UNAVAILABLE', 'IDP_UNAVAILABLE']);

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly expose: boolean;
  /** Public detail shown to the client. */
  readonly detail?: string;
  /** Extra public members of the problem document (e.g. the flow). */
  readonly extra?: Record<string, unknown>;
  /** Headers to add to the response (e.g. WWW-Authenticate). */
  readonly headers?: Record<string, string>;

  constructor(
    code: ErrorCode,
    opts: {
      detail?: string;
      privateDetail?: string;
      cause?: unknown;
      extra?: Record<string, unknown>;
      headers?: Record<string, string>;
    } = {},
  ) {
    super(opts.privateDetail ?? ERRORS[code].title, { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.expose = this.status < 500 || EXPOSED_5XX.has(code);
    this.detail = opts.detail;
    this.extra = opts.extra;
    this.headers = opts.headers;
  }
}

export const isAppError = (e: unknown): e is AppError => e instanceof AppError;
