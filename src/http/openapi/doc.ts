import { z } from 'zod';
import type { ErrorCode } from '../../errors.ts';

/**
 * How a route is documented: a plain object beside the route and its zod schemas, so that adding
 * a route and its contract is one change in one file. `routeDocs(prefix, tag, { 'POST /:id': … })`
 * uses Hono's path syntax under the prefix the routes are mounted at; src/http/openapi/document.ts
 * turns every list into the OpenAPI 3.1 document, and test/integration/openapi.test.ts fails,
 * naming the route, when a route of the app is missing from it (or a documented one is gone).
 */

/** Who may call: `none` (public), `session` (cookie or bearer), `optional` (answers either way). */
export type Auth = 'none' | 'session' | 'optional';

/** A named component (`#/components/schemas/Flow`) or a zod schema turned into JSON Schema. */
export type SchemaRef = z.ZodType | keyof typeof COMPONENT_SCHEMAS | { jsonSchema: Record<string, unknown> };

export interface ResponseDoc {
  description: string;
  schema?: SchemaRef;
  /** Defaults to application/json when a schema is given. */
  contentType?: string;
  headers?: Record<string, string>;
}

export interface RouteDoc {
  summary: string;
  description?: string;
  auth: Auth;
  /** An application/json request body. */
  body?: SchemaRef;
  /** Other request media types (e.g. the token endpoint's form). */
  bodies?: Record<string, SchemaRef>;
  query?: z.ZodObject;
  /** Request headers the route reads: name → description. */
  headers?: Record<string, string>;
  /** Success (and other non-problem) answers by status. */
  responses: Record<number, ResponseDoc>;
  /** Problem+json answers this route gives on purpose; the codes every route can give are added. */
  errors?: ErrorCode[];
  /** Only mounted in development (DEV_MAILBOX). */
  devOnly?: boolean;
  /** A body limit other than the app's 64 KiB (published as `x-max-body-bytes`). */
  maxBodyBytes?: number;
}

export interface DocumentedRoute extends RouteDoc {
  method: string;
  /** Hono syntax, full path: `/auth/login/:id`. */
  path: string;
  tag: string;
}

/** Documents the routes of one routes file, keyed `METHOD /sub-path` under its mount prefix. */
export function routeDocs(prefix: string, tag: string, docs: Record<string, RouteDoc>): DocumentedRoute[] {
  return Object.entries(docs).map(([key, doc]) => {
    const m = /^(GET|POST|PUT|PATCH|DELETE|ALL) (\/\S*)$/.exec(key);
    if (!m) throw new Error(`route doc key must be "METHOD /path": ${key}`);
    const sub = m[2] === '/' ? '' : m[2];
    return { ...doc, method: m[1], path: `${prefix}${sub}` || '/', tag };
  });
}

/** RFC 9457 problem details with our stable code (src/http/present.ts). */
export const ProblemSchema = z
  .object({
    type: z.string().describe('A URI naming the problem type'),
    title: z.string(),
    status: z.number().int(),
    code: z.string().describe('Stable UPPER_SNAKE code from the error registry; clients switch on this'),
    detail: z.string().optional().describe('What was wrong, e.g. the field that failed validation'),
    requestId: z.string().optional().describe('Present on 5xx answers, for support'),
    flow: z.record(z.string(), z.unknown()).optional().describe('The flow, when a flow step failed'),
  })
  .meta({ title: 'Problem' });

const FlowMessage = z.object({ code: z.string(), text: z.string() });

/** The public shape of a login or step-up flow (src/http/present.ts presentFlow). */
export const FlowSchema = z
  .object({
    id: z.string(),
    type: z.enum(['login', 'stepup', 'signup']),
    step: z.enum(['password', 'choose_method', 'totp', 'webauthn', 'code', 'recovery_code', 'signup', 'done', 'denied', 'locked', 'expired']),
    methods: z.array(z.enum(['webauthn', 'totp', 'sms', 'email', 'recovery_code'])).optional(),
    challenge: z.record(z.string(), z.unknown()).optional().describe('WebAuthn request options, or { channel, to } for a sent code'),
    risk: z.object({ level: z.string(), reasons: z.array(z.string()) }).optional(),
    messages: z.array(FlowMessage),
    expiresAt: z.string().describe('ISO 8601'),
    state: z.string().describe('Machine state, for developers'),
    session: z
      .object({ amr: z.array(z.string()), acr: z.string(), authTime: z.string(), expiresAt: z.string(), idleExpiresAt: z.string() })
      .optional()
      .describe('When step is done'),
    tokens: z
      .object({ access_token: z.string(), token_type: z.literal('Bearer'), expires_in: z.number(), refresh_token: z.string() })
      .optional()
      .describe('When done and the flow was started with returnTokens'),
    passwordChangeRequired: z.literal(true).optional().describe('When done and the password was found breached: change it (POST /auth/password)'),
  })
  .meta({ title: 'Flow' });

export const COMPONENT_SCHEMAS = { Problem: ProblemSchema, Flow: FlowSchema } as const;
