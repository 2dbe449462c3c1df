/**
 * Protocol constants (whitepaper §6, wireguard-go constants.go, kernel messages.h) and the
 * implementation's own limits. Times are in milliseconds; names carry their unit.
 */

// Specification.
export const REKEY_AFTER_MESSAGES = 2 ** 60;
/**
 * The spec says 2^64 − 2^13 − 1. Counters here are JavaScript numbers, exact to 2^53 − 1, so we
 * reject at 2^53 − 1 instead: unreachable in practice (at 10 Mpps it takes 28 years).
 */
export const REJECT_AFTER_MESSAGES = Number.MAX_SAFE_INTEGER;
export const REKEY_AFTER_TIME_MS = 120_000;
export const REJECT_AFTER_TIME_MS = 180_000;
export const REKEY_ATTEMPT_TIME_MS = 90_000;
export const REKEY_TIMEOUT_MS = 5_000;
/** Jitter added to REKEY_TIMEOUT, uniform in [0, 334 ms) like the kernel's HZ/3. */
export const REKEY_TIMEOUT_JITTER_MS = 334;
export const KEEPALIVE_TIMEOUT_MS = 10_000;
export const MAX_TIMER_HANDSHAKES = REKEY_ATTEMPT_TIME_MS / REKEY_TIMEOUT_MS; // 18
export const ZERO_KEYS_AFTER_MS = REJECT_AFTER_TIME_MS * 3; // 540 s
export const COOKIE_REFRESH_TIME_MS = 120_000;
/** mac2 is only sent with a cookie younger than this (kernel: max age − latency). */
export const COOKIE_SEND_MAX_AGE_MS = 120_000 - 5_000;
export const PADDING_MULTIPLE = 16;

// Implementation.
export const UNDER_LOAD_AFTER_TIME_MS = 1_000;
export const INITIATIONS_PER_SECOND = 50;
/**
 * wireguard-go is under load when its handshake queue holds 1/8 of 1024 entries. Handshakes here
 * are processed synchronously, so there is no queue to measure: the device is under load when
 * more than this many handshake messages arrived in the last second (boringtun uses 100/s).
 */
export const UNDER_LOAD_HANDSHAKES_PER_SECOND = 128;
export const RATE_LIMIT_PACKETS_PER_SECOND = 20;
export const RATE_LIMIT_BURST = 5;
/**
 * Under load, cookie replies per second (and burst) for the whole device to sources that are no
 * peer's endpoint. The per-source budget cannot stop a flood from more sources than its table
 * holds; this one keeps the daemon reading as fast as such a flood comes (a message past it
 * costs a lookup, not mac1, a cookie and a sealed reply), while peers at their known endpoints
 * keep getting their cookies. 4,096/s is far more than roaming peers need.
 */
export const UNDER_LOAD_COOKIE_REPLIES_PER_SECOND = 4096;
export const STAGED_PACKETS_MAX = 128;
export const MAX_PEERS = 1 << 16;
export const DEFAULT_MTU = 1420;
export const REPLAY_WINDOW_SIZE = 8128;

// Wire format (PROTOCOL.md §2). Bytes 0..3 are the type as a little-endian u32.
export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export const MESSAGE_COOKIE_REPLY = 3;
export const MESSAGE_TRANSPORT = 4;
export const INITIATION_SIZE = 148;
export const RESPONSE_SIZE = 92;
export const COOKIE_REPLY_SIZE = 64;
export const TRANSPORT_HEADER_SIZE = 16;
export const AEAD_TAG_SIZE = 16;
export const TRANSPORT_MIN_SIZE = TRANSPORT_HEADER_SIZE + AEAD_TAG_SIZE; // 32, a keepalive
/** Bytes WireGuard adds around an inner packet on an IPv6 underlay: IPv6 40 + UDP 8 + 32. */
export const TRANSPORT_OVERHEAD_V6 = 80;
export const KEY_SIZE = 32;
