import { createCipheriv, createDecipheriv, randomBytes, createHash } from 'node:crypto';

/**
 * AES-256-GCM sealing of secrets at rest (TOTP seeds, signing keys). Format:
 * `v1.<iv b64url>.<ciphertext b64url>.<tag b64url>`; `aad` binds a sealed value to its row
 * so a ciphertext copied into another row does not open.
 */
export class Sealer {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('master key must be 32 bytes');
  }

  seal(plain: string | Buffer, aad = ''): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(aad));
    const ct = Buffer.concat([c.update(plain), c.final()]);
    return ['v1', iv.toString('base64url'), ct.toString('base64url'), c.getAuthTag().toString('base64url')].join('.');
  }

  /** Throws if the value was tampered with or sealed under another key or aad. */
  open(sealed: string, aad = ''): Buffer {
    const [v, iv, ct, tag] = sealed.split('.');
    if (v !== 'v1' || !iv || ct === undefined || !tag) throw new Error('malformed sealed value');
    const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]);
  }
}

export const sha256 = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
export const randomToken = (bytes = 32): string => randomBytes(bytes).toString('base64url');
