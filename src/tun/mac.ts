/**
 * The addon's keyed BLAKE2s (OpenSSL's BLAKE2SMAC) as the protocol's MAC: ~0.5 us a message
 * against ~8 us for noble, which is what bounds the cookie replies a daemon can send under a
 * handshake flood. The protocol core checks it against noble before using it.
 */
import { useKeyedBlake2s } from '../noise/crypto.js';
import { native } from './native.js';

/** Installs the native MAC; false (noble stays) when the addon or OpenSSL cannot provide it. */
export function installNativeMac(): boolean {
  let addon;
  try {
    addon = native();
  } catch {
    return false;
  }
  if (typeof addon.blake2sMac !== 'function') return false;
  return useKeyedBlake2s((key, data, out) => addon.blake2sMac(key, data, out));
}
