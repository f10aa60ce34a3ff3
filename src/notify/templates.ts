import { z } from 'zod';

/**
 * Message templates. Every interpolated value is HTML-escaped in the HTML body (a device name
 * or a location comes from the request and must not inject markup into a mail client), and
 * links must be http(s) URLs (no `javascript:`).
 */
export const TEMPLATES = ['login_code', 'factor_changed', 'new_device', 'email_verification', 'signup_attempt', 'recovery_link'] as const;
export type TemplateName = (typeof TEMPLATES)[number];

export interface RenderedMessage {
  subject: string;
  text: string;
  html: string;
  /** The SMS text: short, no markup. */
  sms: string;
}

/** The payload does not fit the template; retrying cannot help. */
export class TemplateDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateDataError';
  }
}

const line = z.string().trim().min(1).max(200).refine((s) => !/[\r\n]/.test(s), 'must be one line');
const httpUrl = z
  .string()
  .max(2000)
  .refine((s) => {
    try {
      const u = new URL(s);
      return u.protocol === 'https:' || u.protocol === 'http:';
    } catch {
      return false;
    }
  }, 'must be an http(s) URL');

const DATA = {
  login_code: z.object({
    code: z.string().regex(/^\d{6,10}$/, 'must be 6-10 digits'),
    ttlMinutes: z.string().regex(/^\d{1,2}$/).default('10'),
  }),
  factor_changed: z.object({
    /** e.g. "Authenticator app", "Phone +44…1234". */
    factor: line,
    /** e.g. "added", "removed", "renamed", "replaced". */
    action: z.string().regex(/^[a-z][a-z _-]{0,39}$/, 'must be a short lower-case verb'),
    time: line.optional(),
    /** "This wasn't me" / review link. */
    reviewUrl: httpUrl.optional(),
  }),
  new_device: z.object({
    device: line,
    location: line.optional(),
    time: line.optional(),
    /** The "this wasn't me" link: revokes that session and labels the login as fraudulent. */
    revokeUrl: httpUrl,
  }),
  /** The code that proves a new account's address (sign-up). */
  email_verification: z.object({
    code: z.string().regex(/^\d{6,10}$/, 'must be 6-10 digits'),
    ttlMinutes: z.string().regex(/^\d{1,2}$/).default('10'),
  }),
  /** To the owner of an address someone tried to sign up with (the sign-up answer does not say it exists). */
  signup_attempt: z.object({
    time: line.optional(),
    signInUrl: httpUrl,
  }),
  recovery_link: z.object({
    /** The single-use link (the code rides in its fragment, never sent to a server by a browser). */
    link: httpUrl,
    /** The same code, for an app that asks for it to be typed or pasted. */
    code: z.string().regex(/^[A-Za-z0-9_-]{20,64}$/),
    ttlMinutes: z.string().regex(/^\d{1,4}$/),
  }),
} satisfies Record<TemplateName, z.ZodType>;

export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

/** Tagged template that escapes every interpolated value. */
function html(strings: TemplateStringsArray, ...values: string[]): string {
  return strings.reduce((out, s, i) => out + s + (i < values.length ? escapeHtml(values[i] as string) : ''), '');
}

const page = (title: string, body: string) =>
  `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
  `<body style="font-family:sans-serif;line-height:1.5">${body}</body></html>`;

function parse<T extends TemplateName>(template: T, data: Record<string, string>): z.infer<(typeof DATA)[T]> {
  const schema = DATA[template] as unknown as z.ZodType<z.infer<(typeof DATA)[T]>> | undefined;
  if (!schema) throw new TemplateDataError(`unknown template ${String(template)}`);
  const r = schema.safeParse(data);
  if (!r.success) throw new TemplateDataError(`bad data for ${template}: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** Render a template; throws TemplateDataError when the data does not fit it. */
export function render(template: TemplateName, data: Record<string, string>): RenderedMessage {
  switch (template) {
    case 'login_code': {
      const d = parse('login_code', data);
      const sms = `Your Threshold code is ${d.code}. It expires in ${d.ttlMinutes} minutes.`;
      return {
        subject: 'Your Threshold sign-in code',
        text:
          `Your Threshold code is ${d.code}.\n` +
          `It expires in ${d.ttlMinutes} minutes and works once.\n\n` +
          `If you did not try to sign in, ignore this message and consider changing your password.\n`,
        html: page(
          'Your Threshold sign-in code',
          html`<p>Your Threshold code is</p><p style="font-size:28px;letter-spacing:4px"><strong>${d.code}</strong></p>` +
            html`<p>It expires in ${d.ttlMinutes} minutes and works once.</p>` +
            `<p>If you did not try to sign in, ignore this message and consider changing your password.</p>`,
        ),
        sms,
      };
    }
    case 'factor_changed': {
      const d = parse('factor_changed', data);
      const when = d.time ? ` on ${d.time}` : '';
      const review = d.reviewUrl ? `\nIf this wasn't you, secure your account: ${d.reviewUrl}\n` : "\nIf this wasn't you, contact your administrator at once.\n";
      return {
        subject: 'A sign-in method on your Threshold account changed',
        text: `A sign-in method on your account was ${d.action}${when}: ${d.factor}.\n${review}`,
        html: page(
          'A sign-in method changed',
          html`<p>A sign-in method on your account was ${d.action}${when}: <strong>${d.factor}</strong>.</p>` +
            (d.reviewUrl
              ? html`<p>If this wasn't you, <a href="${d.reviewUrl}">secure your account</a>.</p>`
              : `<p>If this wasn't you, contact your administrator at once.</p>`),
        ),
        sms: `Threshold: a sign-in method was ${d.action}: ${d.factor}. Not you? Secure your account.`,
      };
    }
    case 'new_device': {
      const d = parse('new_device', data);
      const where = d.location ? ` in ${d.location}` : '';
      const when = d.time ? ` on ${d.time}` : '';
      return {
        subject: 'New sign-in to your Threshold account',
        text:
          `Your account was signed in from a new device: ${d.device}${where}${when}.\n\n` +
          `If this was you, there is nothing to do.\n` +
          `If this wasn't you, open this link to sign that device out, then change your password:\n${d.revokeUrl}\n`,
        html: page(
          'New sign-in',
          html`<p>Your account was signed in from a new device: <strong>${d.device}</strong>${where}${when}.</p>` +
            `<p>If this was you, there is nothing to do.</p>` +
            html`<p><a href="${d.revokeUrl}">This wasn't me</a> — signs that device out; then change your password.</p>`,
        ),
        sms: `Threshold: new sign-in from ${d.device}${where}. Not you? ${d.revokeUrl}`,
      };
    }
    case 'email_verification': {
      const d = parse('email_verification', data);
      return {
        subject: 'Confirm your email address for Threshold',
        text:
          `Your confirmation code is ${d.code}.\n` +
          `Enter it where you signed up. It expires in ${d.ttlMinutes} minutes and works once.\n\n` +
          `If you did not sign up, ignore this message: no account is confirmed without the code.\n`,
        html: page(
          'Confirm your email address',
          html`<p>Your confirmation code is</p><p style="font-size:28px;letter-spacing:4px"><strong>${d.code}</strong></p>` +
            html`<p>Enter it where you signed up. It expires in ${d.ttlMinutes} minutes and works once.</p>` +
            `<p>If you did not sign up, ignore this message: no account is confirmed without the code.</p>`,
        ),
        sms: `Your Threshold confirmation code is ${d.code}.`,
      };
    }
    case 'signup_attempt': {
      const d = parse('signup_attempt', data);
      const when = d.time ? ` on ${d.time}` : '';
      return {
        subject: 'Someone tried to sign up with your email address',
        text:
          `Someone tried to create a new Threshold account with this address${when}. You already have one, so nothing was created.\n\n` +
          `If it was you, sign in instead: ${d.signInUrl}\nIf it wasn't, you can ignore this message; your account was not changed.\n`,
        html: page(
          'Someone tried to sign up with your address',
          html`<p>Someone tried to create a new Threshold account with this address${when}. You already have one, so nothing was created.</p>` +
            html`<p>If it was you, <a href="${d.signInUrl}">sign in</a> instead. If it wasn't, you can ignore this message; your account was not changed.</p>`,
        ),
        sms: 'Threshold: someone tried to sign up with your address; you already have an account.',
      };
    }
    case 'recovery_link': {
      const d = parse('recovery_link', data);
      return {
        subject: 'Recover your Threshold account',
        text:
          `Someone (we hope you) asked to recover your account. To choose a new password, open:\n${d.link}\n\n` +
          `Or enter this code: ${d.code}\nIt works once, in the next ${d.ttlMinutes} minutes. If your account has a second factor you will need it too.\n\n` +
          `If you did not ask, ignore this message: your password stays as it is.\n`,
        html: page(
          'Recover your account',
          html`<p>Someone (we hope you) asked to recover your account.</p><p><a href="${d.link}">Choose a new password</a></p>` +
            html`<p>Or enter this code: <code>${d.code}</code>. It works once, in the next ${d.ttlMinutes} minutes.</p>` +
            `<p>If you did not ask, ignore this message: your password stays as it is.</p>`,
        ),
        sms: `Threshold account recovery: ${d.link}`,
      };
    }
    default:
      throw new TemplateDataError(`unknown template ${String(template)}`);
  }
}
