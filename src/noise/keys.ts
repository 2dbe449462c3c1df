/**
 * Keys as WireGuard writes them: 32 bytes, base64 (44 characters, as `wg` prints) or lowercase
 * hex (the UAPI). genkey/pubkey/genpsk match `wg genkey`, `wg pubkey`, `wg genpsk`.
 */
import { randomBytes } from 'node:crypto';
import { WgError } from '../errors.js';
import { KEY_SIZE } from '../constants.js';
import { clamp, publicKeyOf } from './crypto.js';

/** 44 characters of base64 for 32 bytes; the last character must leave no stray bits. */
const BASE64_KEY = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** Whether `text` is exactly a base64 WireGuard key as `wg` prints it (no spaces around). */
export function isBase64Key(text: string): boolean {
  return BASE64_KEY.test(text);
}

/**
 * Parses a base64 key (surrounding whitespace ignored); throws WgError naming `field` when it is
 * not exactly 32 bytes. The message never repeats the text: it may be a private key.
 */
export function keyFromBase64(text: string, field = 'key'): Uint8Array {
  const t = text.trim();
  if (!BASE64_KEY.test(t)) {
    throw new WgError(
      'ERR_INVALID_KEY',
      `${field}: not a base64 WireGuard key (44 characters)`,
      field,
    );
  }
  return new Uint8Array(Buffer.from(t, 'base64'));
}

export function keyToBase64(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64');
}

export function keyFromHex(text: string, field = 'key'): Uint8Array {
  if (!/^[0-9a-fA-F]{64}$/.test(text)) {
    throw new WgError('ERR_INVALID_KEY', `${field}: not a 64-digit hex key`, field);
  }
  return new Uint8Array(Buffer.from(text, 'hex'));
}

export function keyToHex(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('hex');
}

/** A new private key, clamped like `wg genkey`. */
export function generatePrivateKey(): Uint8Array {
  return clamp(new Uint8Array(randomBytes(KEY_SIZE)));
}

export function generatePresharedKey(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_SIZE));
}

export function publicKey(privateKey: Uint8Array): Uint8Array {
  return publicKeyOf(privateKey);
}

/** A short, non-secret label for logs: the first 8 base64 characters of a public key. */
export function shortKey(publicKey: Uint8Array): string {
  return keyToBase64(publicKey).slice(0, 8) + '…';
}
