import { z } from 'zod';
import { routeDocs, type RouteDoc } from './doc.ts';

/** GET /health and GET /health/ready answer the same readiness check. */
const READINESS: RouteDoc = {
  summary: 'Readiness: every dependency a login needs (database, Redis, a consuming risk worker)',
  auth: 'none',
  responses: {
    200: { description: 'Every dependency answers', schema: { jsonSchema: { type: 'object', properties: { status: { const: 'ok' }, checks: { type: 'object', additionalProperties: { type: 'string' } } } } } },
    503: { description: 'A dependency is down or slow (`status: degraded`; each check says ok, down or timeout), or no risk worker has beaten its heartbeat recently' },
  },
};

/** Routes registered directly in src/http/app.ts (health, keys, the contract itself, dev tools). */
export const appDocs = [
  ...routeDocs('', 'Service', {
    'GET /health': READINESS,
    'GET /health/ready': READINESS,
    'GET /health/live': {
      summary: 'Liveness: the process serves requests (checks no dependency)',
      auth: 'none',
      responses: { 200: { description: 'Alive', schema: { jsonSchema: { type: 'object', properties: { status: { const: 'ok' } } } } } },
    },
    'GET /.well-known/jwks.json': {
      summary: 'The public keys that sign access tokens (RFC 7517)',
      auth: 'none',
      responses: { 200: { description: 'A JWK set', schema: { jsonSchema: { type: 'object', properties: { keys: { type: 'array', items: { type: 'object' } } }, required: ['keys'] } } } },
    },
    'GET /openapi.json': {
      summary: 'This document: the HTTP contract, generated from the route schemas',
      auth: 'none',
      responses: { 200: { description: 'OpenAPI 3.1', schema: { jsonSchema: { type: 'object' } } } },
    },
    'GET /docs': {
      summary: 'A readable reference page of this document (no script; strict CSP)',
      auth: 'none',
      responses: { 200: { description: 'HTML', contentType: 'text/html', schema: { jsonSchema: { type: 'string' } } } },
    },
    'GET /dev/mailbox': {
      summary: 'Development only: the messages that would have been sent (loopback callers only)',
      auth: 'none',
      devOnly: true,
      query: z.object({ to: z.string().max(254).optional().describe('Only messages to this destination') }),
      responses: { 200: { description: 'The latest 50 messages', schema: { jsonSchema: { type: 'array', items: { type: 'object' } } } } },
      errors: ['NOT_FOUND'],
    },
  }),
];
