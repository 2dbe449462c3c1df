/**
 * The library surface of wireguard-ts: the sans-I/O device and its pieces, the key helpers and
 * the configuration protocol. The daemon (src/cli.ts) is built from these.
 */
export {
  Device,
  paddedLength,
  type DeviceEnv,
  type DeviceOutput,
  type Logger,
} from './tunnel/device.js';
export { Peer } from './tunnel/peer.js';
export { Driver } from './tunnel/driver.js';
export type { TunDevice, Bind } from './tunnel/io.js';
export {
  parseAddress,
  formatAddress,
  parsePrefix,
  formatPrefix,
  parseEndpoint,
  formatEndpoint,
  type Endpoint,
  type IpPrefix,
} from './tunnel/ip.js';
export {
  generatePrivateKey,
  generatePresharedKey,
  publicKey,
  keyFromBase64,
  keyToBase64,
  keyFromHex,
  keyToHex,
} from './noise/keys.js';
export { nodeAead, nobleAead, type Aead } from './noise/aead.js';
export { WgError, DROP_REASONS, type DropReason, type WgErrorCode } from './errors.js';
export { parseSet, serializeGet, parseGet, serializeSet, type UapiSetOp } from './control/uapi.js';
