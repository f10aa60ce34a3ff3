import { z } from 'zod';
import type { Hono } from 'hono';
import type { Clock } from '../../clock.ts';
import type { Db } from '../../db/db.ts';
import type { Env, Services } from '../../http/services.ts';
import type { RouteDoc } from '../../http/openapi/doc.ts';
import { METHOD_STRENGTH, type FlowStep, type MfaMethod } from '../../../machines/types.ts';
import type { CodeVerdict, mfaMachine, SendCodeInput, WebAuthnResult } from '../../../machines/mfa.machine.ts';
import type { loginMachine, LoginInput } from '../../../machines/login.machine.ts';
import type { PasswordService } from './password/password.ts';
import type { TotpService } from './totp/totp.ts';
import type { RecoveryService } from './recovery/recovery.ts';
import type { PasskeyPort } from './passkey/index.ts';
import { password } from './password/index.ts';
import { passkey } from './passkey/index.ts';
import { webauthn } from './webauthn/index.ts';
import { totp } from './totp/index.ts';
import { codes } from './codes/index.ts';
import { recovery } from './recovery/index.ts';
import type { CompromisedPasswords } from '../passwords/compromised.ts';

/**
 * The method registry: every way to prove who you are is one folder under src/authn/methods/
 * exporting one `MethodDescriptor`, listed once in `METHODS` below. The login chart's and the MFA
 * chart's provided actors, the flow API's event schemas, the presenter, the factor list
 * (GET /auth/mfa) and the enrolment routes are all built from it. See README.md beside this file.
 */

/** The MFA chart's actor implementations (`mfaMachine.provide({ actors })`); each method provides its own. */
export type MfaActors = NonNullable<Parameters<typeof mfaMachine.provide>[0]['actors']>;
/** The login chart's actor implementations; each first-factor method provides its own. */
export type LoginActors = NonNullable<Parameters<typeof loginMachine.provide>[0]['actors']>;

/** What the MFA machine needs for SMS/email codes and WebAuthn; absent parts make those methods fail closed. */
export interface SecondFactorPorts {
  sendCode?: (i: SendCodeInput & { resend: boolean }) => Promise<{ to: string }>;
  verifyCode?: (flowId: string, code: string) => Promise<CodeVerdict>;
  startWebAuthn?: (flowId: string, identityId: string) => Promise<Record<string, unknown>>;
  verifyWebAuthn?: (flowId: string, identityId: string, response: Record<string, unknown>) => Promise<WebAuthnResult>;
}

/** The account-wide second-factor failure guard (src/auth/mfa-guard.ts) every code check goes through. */
export interface GuardSettings {
  db: Db;
  clock: Clock;
  threshold: number;
  lockoutSeconds: number;
}

/** What second-factor methods build their MFA-chart actors from. */
export interface MfaActorDeps {
  guard: GuardSettings;
  totp: TotpService;
  recovery: RecoveryService;
  ports: SecondFactorPorts;
}

/** What first-factor methods build their login-chart actors from; an absent port fails closed. */
export interface LoginActorDeps {
  passwords: PasswordService;
  passkey?: PasskeyPort;
  /** Breached passwords proven at sign-in flag the account (src/authn/passwords/compromised.ts). */
  compromised?: CompromisedPasswords;
}

/** One view over every kind of second factor a user can hold (GET /auth/mfa). */
export interface FactorView {
  id: string;
  type: MfaMethod;
  label: string;
  createdAt: string | null;
  lastUsedAt: string | null;
  /** NIST 800-63B: SMS is a restricted authenticator. */
  restricted?: boolean;
  /** WebAuthn: device-bound (hwk) or synced passkey (swk). */
  deviceType?: string;
  passkey?: boolean;
  /** Recovery codes: how many are left. */
  remaining?: number;
}

/** How a method's enrolled factors are found, listed, renamed and removed. */
export interface FactorSource {
  /**
   * Per `choose` value: an SQL boolean expression over `$1` (the identity id) saying whether the
   * identity holds a usable factor. All methods' expressions form one statement (every login asks it).
   */
  held: Partial<Record<MfaMethod, string>>;
  /** The identity's factors of this method (any order; the factor list sorts by strength). */
  list(db: Db, identityId: string): Promise<FactorView[]>;
  /** Factors with a row id of their own are renamed and removed by id in this table. */
  table?: string;
  /** Which of `table`'s rows are usable factors: while any is left, the identity keeps its dependent factors. */
  usable?: string;
  /** Run (with `$1` the identity id) when the identity's last independent factor is removed. */
  dropWhenAlone?: string;
}

/** Where enrolment routes are mounted (beside the factor list) unless a method says otherwise. */
export const ENROLMENT_MOUNT = '/auth/mfa';

/** A method's routes with their OpenAPI docs (keys relative to `mount`). */
export interface MethodRoutes {
  /** Defaults to ENROLMENT_MOUNT; a federated method mounts its start/callback routes elsewhere (e.g. `/auth/idp`). */
  mount?: string;
  /** The OpenAPI tag of routes mounted elsewhere than ENROLMENT_MOUNT. */
  tag?: string;
  docs: Record<string, RouteDoc>;
  app(s: Services): Hono<Env>;
}

export interface MethodDescriptor {
  /** The folder's name. */
  id: string;
  /** `first`: proves who the user is (starts a login); `second`: raises a proven identity's assurance. */
  kind: 'first' | 'second';
  /**
   * Second factor: the `choose` values it answers, strongest first (METHODS order is the offer order).
   * First factor: the `method` of POST /auth/login that starts it.
   */
  methods: readonly string[];
  /** RFC 8176 amr values (or internal markers) a success with this method may prove. */
  amr: readonly string[];
  /** Flow-API events a client sends for this method (POST /auth/login/:id, POST /auth/stepup/:id). */
  events: readonly z.ZodObject[];
  /** Steps (`meta.step`) of the charts that ask for this method; `challenge`: the presenter shows `flow.challenge`. */
  steps: readonly { step: FlowStep; challenge?: boolean }[];
  factors?: FactorSource;
  mfaActors?(d: MfaActorDeps): Partial<MfaActors>;
  loginActors?(d: LoginActorDeps): Partial<LoginActors>;
  routes?: MethodRoutes;
  /**
   * Machine event types that only this method's own routes send (with `login.submit`), never a
   * client: e.g. a federated method's callback route, having verified the IdP's answer, sends
   * `{ type: 'idp.verified', identityId, amr }`. They are not in `events`, so POST /auth/login/:id
   * refuses them (INVALID_EVENT) — a client cannot claim a verified identity.
   */
  internalEvents?: readonly string[];
  /** Choose values that raise no assurance (an email code: NIST 800-63B does not count it); never offered for a session step-up. */
  raisesNoAssurance?: readonly MfaMethod[];
}

/** Every method, second factors strongest first. Adding a method = one folder + one line here. */
export const METHODS: readonly MethodDescriptor[] = [password, passkey, webauthn, totp, codes, recovery];

export const FIRST_FACTORS = METHODS.filter((m) => m.kind === 'first');
export const SECOND_FACTORS = METHODS.filter((m) => m.kind === 'second');

/** Second-factor `choose` values, strongest first. */
export const SECOND_FACTOR_METHODS = SECOND_FACTORS.flatMap((m) => m.methods) as MfaMethod[];
// The MFA chart (pure; it cannot read this registry) orders offers by METHOD_STRENGTH: they must agree.
if (SECOND_FACTOR_METHODS.join() !== METHOD_STRENGTH.join())
  throw new Error(`method registry order (${SECOND_FACTOR_METHODS.join()}) differs from METHOD_STRENGTH (${METHOD_STRENGTH.join()})`);

/** Choose values that prove a key (`hwk`/`swk`): the only ones a permission requiring a key accepts. */
export const KEY_METHODS: ReadonlySet<MfaMethod> = new Set(
  SECOND_FACTORS.filter((m) => m.amr.includes('hwk') || m.amr.includes('swk')).flatMap((m) => m.methods as MfaMethod[]),
);
/** Choose values never offered for a session step-up. */
export const NO_ASSURANCE_METHODS: ReadonlySet<MfaMethod> = new Set(SECOND_FACTORS.flatMap((m) => m.raisesNoAssurance ?? []));

/** The `method` values POST /auth/login accepts. */
export const LOGIN_START_METHODS = FIRST_FACTORS.flatMap((m) => m.methods) as [NonNullable<LoginInput['method']>, ...NonNullable<LoginInput['method']>[]];

/** Steps while which the presenter shows the flow's challenge (WebAuthn options, a masked code destination). */
export const CHALLENGE_STEPS: ReadonlySet<FlowStep> = new Set(METHODS.flatMap((m) => m.steps.filter((s) => s.challenge).map((s) => s.step)));

/** The registry's own event: pick one of the offered second factors. */
const ChooseEvent = z.object({ type: z.literal('choose'), method: z.enum(SECOND_FACTOR_METHODS as [MfaMethod, ...MfaMethod[]]) }).strict();

const typeOf = (s: z.ZodObject) => (s.shape.type as z.ZodLiteral<string>).value;
/** Methods' events, one schema per `type` (a passkey sends the same `webauthn` event as a security key). */
function eventsOf(ms: readonly MethodDescriptor[]): z.ZodObject[] {
  const seen = new Map<string, z.ZodObject>();
  for (const s of ms.flatMap((m) => m.events)) if (!seen.has(typeOf(s))) seen.set(typeOf(s), s);
  return [...seen.values()];
}

/** Second-factor events, shared by login and step-up flows. */
export const MFA_EVENT_SCHEMAS: readonly z.ZodObject[] = [ChooseEvent, ...eventsOf(SECOND_FACTORS)];
/** Events a login flow accepts from a client: first factors' and second factors'. */
export const LOGIN_EVENT_SCHEMAS: readonly z.ZodObject[] = eventsOf([...FIRST_FACTORS, { events: MFA_EVENT_SCHEMAS } as MethodDescriptor]);

/** Methods whose routes are mounted elsewhere than beside the factor list (src/http/routes/methods.ts mounts them). */
export const MOUNTED_METHODS = METHODS.filter((m) => m.routes?.mount && m.routes.mount !== ENROLMENT_MOUNT);

/** The descriptor whose factors include `type` (a `choose` value). */
export function methodOf(type: MfaMethod): MethodDescriptor | undefined {
  return SECOND_FACTORS.find((m) => m.methods.includes(type));
}
