import { z } from 'zod';
import { fromPromise } from 'xstate';
import type { MethodDescriptor } from '../registry.ts';
import { webauthnRoutes } from './routes.ts';

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const unavailable = (): never => {
  throw new Error('WebAuthn is not configured');
};

/** AuthenticationResponseJSON; verified field by field by the WebAuthn service (./webauthn.ts). */
export const WebAuthnEvent = z.object({ type: z.literal('webauthn'), response: z.record(z.string(), z.unknown()) }).strict();

/** A security key or passkey as a second factor (the strongest: phishing-resistant). amr: ./webauthn-amr.ts. */
export const webauthn: MethodDescriptor = {
  id: 'webauthn',
  kind: 'second',
  methods: ['webauthn'],
  amr: ['hwk', 'swk', 'user', 'mfa'],
  events: [WebAuthnEvent],
  steps: [{ step: 'webauthn', challenge: true }],
  factors: {
    held: { webauthn: 'EXISTS (SELECT 1 FROM webauthn_credentials WHERE identity_id = $1)' },
    table: 'webauthn_credentials',
    usable: 'TRUE',
    async list(db, identityId) {
      const { rows } = await db.query<{ id: string; label: string; created_at: Date; last_used_at: Date | null; device_type: string; discoverable: boolean }>(
        'SELECT id, label, created_at, last_used_at, device_type, discoverable FROM webauthn_credentials WHERE identity_id = $1 ORDER BY created_at',
        [identityId],
      );
      return rows.map((r) => ({ id: r.id, type: 'webauthn' as const, label: r.label, createdAt: iso(r.created_at), lastUsedAt: iso(r.last_used_at), deviceType: r.device_type, passkey: r.discoverable }));
    },
  },
  mfaActors: ({ ports }) => ({
    startWebAuthn: fromPromise(async ({ input }) => (ports.startWebAuthn ?? unavailable)(input.flowId, input.identityId)),
    verifyWebAuthn: fromPromise(async ({ input }) => (ports.verifyWebAuthn ?? unavailable)(input.flowId, input.identityId, input.response)),
  }),
  routes: webauthnRoutes,
};
