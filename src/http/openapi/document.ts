import { z } from 'zod';
import { pageDocs } from '../../pages/forms.ts';
import { ERRORS, type ErrorCode } from '../../errors.ts';
import { COMPONENT_SCHEMAS, type DocumentedRoute, type SchemaRef } from './doc.ts';
import { appDocs } from './app-docs.ts';
import { loginDocs } from '../routes/login.ts';
import { sessionDocs } from '../routes/session.ts';
import { mfaDocs } from '../routes/mfa.ts';
import { methodDocs } from '../routes/methods.ts';
import { stepUpDocs } from '../routes/stepup.ts';
import { tokenDocs } from '../routes/token.ts';
import { verifyDocs } from '../routes/verify.ts';
import { adminDocs } from '../routes/admin.ts';
import { bindingDocs } from '../routes/bindings.ts';
import { apiKeyDocs } from '../../credentials/api-keys/routes.ts';
import { riskDocs } from '../routes/risk.ts';
import { riskBacktestDocs } from '../routes/risk-backtests.ts';
import { metricsDocs } from '../../metrics/routes.ts';
import { trustedIssuerDocs } from '../../authn/trusted-issuers/routes.ts';
import { knownUserDocs } from '../../authn/trusted-issuers/known-user.ts';
import { machineClientDocs } from '../../credentials/machine-clients/routes.ts';
import { signupDocs } from '../routes/signup.ts';
import { emailDocs } from '../routes/email.ts';
import { devicesDocs } from '../routes/devices.ts';
import { adminRecoveryDocs, recoveryDocs } from '../routes/recovery.ts';

/** Every documented route. A new routes file adds its `…Docs` export here. */
export const ALL_ROUTE_DOCS: readonly DocumentedRoute[] = [
  ...appDocs,
  ...loginDocs,
  ...signupDocs,
  ...emailDocs,
  ...mfaDocs,
  ...methodDocs,
  ...stepUpDocs,
  ...tokenDocs,
  ...verifyDocs,
  ...sessionDocs,
  ...adminDocs,
  ...bindingDocs,
  ...apiKeyDocs,
  ...riskDocs,
  ...riskBacktestDocs,
  ...metricsDocs,
  ...trustedIssuerDocs,
  ...knownUserDocs,
  ...machineClientDocs,
  ...devicesDocs,
  ...recoveryDocs,
  ...adminRecoveryDocs,
  ...pageDocs,
];

/** Problems any route can answer: the URL rule, the body limit, a wrong method, a fault. */
const COMMON_ERRORS: ErrorCode[] = ['VALIDATION_FAILED', 'PAYLOAD_TOO_LARGE', 'INTERNAL'];

/** `/auth/login/:id` → `/auth/login/{id}`. */
export const openApiPath = (honoPath: string) => honoPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

const toJsonSchema = (s: z.ZodType): Record<string, unknown> => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};

const schemaOf = (s: SchemaRef): Record<string, unknown> =>
  typeof s === 'string' ? { $ref: `#/components/schemas/${s}` } : 'jsonSchema' in s ? s.jsonSchema : toJsonSchema(s);

const problemResponse = (codes: ErrorCode[]) => ({
  description: codes.map((c) => `\`${c}\`: ${ERRORS[c].title}`).join(' · '),
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
});

function operation(r: DocumentedRoute) {
  const parameters: Record<string, unknown>[] = [];
  for (const [, name] of r.path.matchAll(/:([A-Za-z0-9_]+)/g)) {
    parameters.push({ name, in: 'path', required: true, schema: { type: 'string' } });
  }
  if (r.query) {
    const js = toJsonSchema(r.query) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
    for (const [name, schema] of Object.entries(js.properties ?? {})) {
      const { description, ...rest } = schema;
      parameters.push({ name, in: 'query', required: js.required?.includes(name) ?? false, schema: rest, ...(description ? { description } : {}) });
    }
  }
  for (const [name, description] of Object.entries(r.headers ?? {})) parameters.push({ name, in: 'header', required: false, description, schema: { type: 'string' } });

  const responses: Record<string, unknown> = {};
  for (const [status, res] of Object.entries(r.responses)) {
    responses[status] = {
      description: res.description,
      ...(res.headers ? { headers: Object.fromEntries(Object.entries(res.headers).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }])) } : {}),
      ...(res.schema ? { content: { [res.contentType ?? 'application/json']: { schema: schemaOf(res.schema) } } } : {}),
    };
  }
  // Problems grouped by status; each status lists its stable codes.
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set([...(r.errors ?? []), ...COMMON_ERRORS])) {
    const st = ERRORS[code].status;
    byStatus.set(st, [...(byStatus.get(st) ?? []), code]);
  }
  for (const [st, codes] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    if (responses[st]) continue;
    // Only the common problem at this status: the shared component.
    if (codes.length === 1 && COMMON_ERRORS.includes(codes[0])) {
      responses[st] = { $ref: `#/components/responses/${codes[0]}` };
      continue;
    }
    responses[st] = problemResponse(codes);
  }

  const body = { ...(r.body ? { 'application/json': r.body } : {}), ...r.bodies };
  return {
    tags: [r.tag],
    summary: r.summary,
    ...(r.description ? { description: r.description } : {}),
    operationId: `${r.method.toLowerCase()}${r.path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, ch: string | undefined) => (ch ? ch.toUpperCase() : ''))}`,
    security: r.auth === 'none' ? [] : r.auth === 'session' ? [{ sessionCookie: [] }, { bearer: [] }] : [{}, { sessionCookie: [] }, { bearer: [] }],
    ...(parameters.length ? { parameters } : {}),
    ...(Object.keys(body).length
      ? { requestBody: { required: false, content: Object.fromEntries(Object.entries(body).map(([t, s]) => [t, { schema: schemaOf(s) }])) } }
      : {}),
    ...(r.maxBodyBytes !== undefined ? { 'x-max-body-bytes': r.maxBodyBytes } : {}),
    responses,
  };
}

export interface OpenApiOptions {
  /** Include development-only routes (DEV_MAILBOX). */
  devMailbox: boolean;
  /** Session cookie name (`__Host-` prefixed over https). */
  sessionCookie: string;
  publicUrl?: string;
}

/** The OpenAPI 3.1 document of the routes this app mounts. */
export function buildOpenApi(opts: OpenApiOptions, routes: readonly DocumentedRoute[] = ALL_ROUTE_DOCS) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    if (r.devOnly && !opts.devMailbox) continue;
    const p = (paths[openApiPath(r.path)] ??= {});
    // `ALL` (forward-auth) answers any method a proxy forwards; documented as the usual ones.
    const methods = r.method === 'ALL' ? ['get', 'head', 'post', 'put', 'patch', 'delete'] : [r.method.toLowerCase()];
    for (const m of methods) p[m] = operation({ ...r, method: m.toUpperCase() });
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Threshold',
      version: '0.1.0',
      description:
        'Risk-adaptive login engine. Errors are RFC 9457 `application/problem+json` with a stable `code`; ' +
        '`/auth/token` answers RFC 6749 JSON instead. Bodies over 64 KiB are refused (413). Strings must not ' +
        'contain NUL or unpaired UTF-16 surrogates (400 `VALIDATION_FAILED`). A wrong method on an existing path ' +
        'is 405 `METHOD_NOT_ALLOWED` with `Allow`.',
    },
    ...(opts.publicUrl ? { servers: [{ url: opts.publicUrl }] } : {}),
    paths,
    components: {
      schemas: Object.fromEntries(Object.entries(COMPONENT_SCHEMAS).map(([k, s]) => [k, toJsonSchema(s)])),
      responses: Object.fromEntries(COMMON_ERRORS.map((c) => [c, problemResponse([c])])),
      securitySchemes: {
        sessionCookie: { type: 'apiKey', in: 'cookie', name: opts.sessionCookie, description: 'The HTTP-only session cookie set when a login flow finishes.' },
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token from a flow started with returnTokens, or from /auth/token.' },
      },
    },
  };
}

export type OpenApiDocument = ReturnType<typeof buildOpenApi>;
