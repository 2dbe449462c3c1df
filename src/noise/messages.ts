/**
 * The four WireGuard messages (PROTOCOL.md §2): sizes, field offsets, and classification of an
 * inbound datagram by type and exact length before any cryptography.
 */
import {
  COOKIE_REPLY_SIZE,
  INITIATION_SIZE,
  MESSAGE_COOKIE_REPLY,
  MESSAGE_INITIATION,
  MESSAGE_RESPONSE,
  MESSAGE_TRANSPORT,
  RESPONSE_SIZE,
  TRANSPORT_MIN_SIZE,
} from '../constants.js';

export const Initiation = {
  type: 0,
  sender: 4,
  ephemeral: 8,
  static: 40, // 32 + 16
  timestamp: 88, // 12 + 16
  mac1: 116,
  mac2: 132,
  size: INITIATION_SIZE,
} as const;

export const Response = {
  type: 0,
  sender: 4,
  receiver: 8,
  ephemeral: 12,
  empty: 44, // 0 + 16
  mac1: 60,
  mac2: 76,
  size: RESPONSE_SIZE,
} as const;

export const CookieReply = {
  type: 0,
  receiver: 4,
  nonce: 8, // 24
  cookie: 32, // 16 + 16
  size: COOKIE_REPLY_SIZE,
} as const;

export const Transport = {
  type: 0,
  receiver: 4,
  counter: 8,
  data: 16,
} as const;

export type MessageKind = 'initiation' | 'response' | 'cookie' | 'transport';

/**
 * What kind of message a datagram is, or why it is none: the 4-byte little-endian type must be
 * exactly 1..4 (the three reserved bytes zero) and handshake messages must have their exact size.
 */
export function classify(
  d: Uint8Array,
): MessageKind | 'short_packet' | 'unknown_type' | 'bad_length' {
  if (d.length < 4) return 'short_packet';
  if (d[1] !== 0 || d[2] !== 0 || d[3] !== 0) return 'unknown_type';
  switch (d[0]) {
    case MESSAGE_INITIATION:
      return d.length === INITIATION_SIZE ? 'initiation' : 'bad_length';
    case MESSAGE_RESPONSE:
      return d.length === RESPONSE_SIZE ? 'response' : 'bad_length';
    case MESSAGE_COOKIE_REPLY:
      return d.length === COOKIE_REPLY_SIZE ? 'cookie' : 'bad_length';
    case MESSAGE_TRANSPORT:
      return d.length >= TRANSPORT_MIN_SIZE ? 'transport' : 'bad_length';
    default:
      return 'unknown_type';
  }
}

export function readU32(d: Uint8Array, off: number): number {
  return (d[off]! | (d[off + 1]! << 8) | (d[off + 2]! << 16) | (d[off + 3]! << 24)) >>> 0;
}

export function writeU32(d: Uint8Array, off: number, v: number): void {
  d[off] = v & 0xff;
  d[off + 1] = (v >>> 8) & 0xff;
  d[off + 2] = (v >>> 16) & 0xff;
  d[off + 3] = (v >>> 24) & 0xff;
}

/**
 * Reads the 64-bit little-endian counter of a transport message as a number, or -1 when it is
 * at or above 2^53 (beyond what this implementation ever accepts; see REJECT_AFTER_MESSAGES).
 */
export function readCounter(d: Uint8Array, off: number): number {
  const lo = readU32(d, off);
  const hi = readU32(d, off + 4);
  if (hi >= 0x200000) return -1;
  return hi * 0x1_0000_0000 + lo;
}

export function writeCounter(d: Uint8Array, off: number, v: number): void {
  writeU32(d, off, v >>> 0);
  writeU32(d, off + 4, Math.floor(v / 0x1_0000_0000));
}
