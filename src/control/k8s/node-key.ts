/**
 * The node's persistent X25519 key: generated once, written 0600 in a 0700 directory (a hostPath
 * outside tmpfs in the DaemonSet), reused across agent restarts and reboots so peers never have
 * to learn a new key (the bootstrap problem of seed 002). The file holds the key in `wg genkey`
 * form, so `wg pubkey < file` works on it.
 */
import {
  chmodSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
  closeSync,
  fsyncSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { WgError } from '../../errors.js';
import {
  generatePrivateKey,
  isBase64Key,
  keyFromBase64,
  publicKey as publicKeyOf,
} from '../../noise/keys.js';

export interface NodeKey {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  /** Base64 of the public key, as published. */
  readonly publicKeyBase64: string;
  /** True when this call generated (and saved) the key. */
  readonly generated: boolean;
}

function parseKeyFile(text: string, file: string): Uint8Array {
  if (!isBase64Key(text.trim())) {
    throw new WgError('ERR_INVALID_KEY', `${file}: not a base64 WireGuard private key`, 'key-file');
  }
  return keyFromBase64(text, 'key-file');
}

/** Loads the key at `file`, or generates and saves one when the file does not exist. */
export function loadOrCreateNodeKey(file: string): NodeKey {
  let privateKey: Uint8Array;
  let generated = false;
  try {
    privateKey = parseKeyFile(readFileSync(file, 'utf8'), file);
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new WgError(
        'ERR_INVALID_KEY',
        `${file} is accessible to other users (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 ${file}`,
        'key-file',
      );
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    privateKey = generatePrivateKey();
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    chmodSync(dirname(file), 0o700);
    // Write-then-rename, synced, so a crash or power loss never leaves a truncated key behind.
    const tmp = `${file}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, `${Buffer.from(privateKey).toString('base64')}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    generated = true;
  }
  const publicKey = publicKeyOf(privateKey);
  return {
    privateKey,
    publicKey,
    publicKeyBase64: Buffer.from(publicKey).toString('base64'),
    generated,
  };
}
