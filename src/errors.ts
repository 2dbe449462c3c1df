/**
 * Errors for the API and configuration (thrown, with a stable code), and drop reasons for the
 * data path (never thrown: counted).
 */

export type WgErrorCode =
  | 'ERR_INVALID_KEY'
  | 'ERR_INVALID_CIDR'
  | 'ERR_INVALID_ADDRESS'
  | 'ERR_INVALID_ENDPOINT'
  | 'ERR_INVALID_PORT'
  | 'ERR_INVALID_VALUE'
  | 'ERR_INVALID_CONFIG'
  | 'ERR_UNKNOWN_PEER'
  | 'ERR_NO_PRIVATE_KEY'
  | 'ERR_HANDSHAKE'
  | 'ERR_IN_USE'
  | 'ERR_UNSUPPORTED'
  | 'ERR_SYSTEM';

export class WgError extends Error {
  readonly code: WgErrorCode;
  /** The configuration field (or UAPI key) that was wrong, when there is one. */
  readonly field: string | undefined;
  constructor(code: WgErrorCode, message: string, field?: string) {
    super(message);
    this.name = 'WgError';
    this.code = code;
    this.field = field;
  }
}

/** Why a packet was dropped. Each reason has a counter on the device. */
export const DROP_REASONS = [
  // inbound datagrams
  'short_packet',
  'unknown_type',
  'bad_length',
  'bad_mac1',
  'bad_mac2',
  'cookie_required',
  'cookie_rate_limited',
  'cookie_over_budget',
  'rate_limited',
  'handshake_failed',
  'unknown_peer',
  'replayed_timestamp',
  'initiation_flood',
  'unknown_index',
  'unexpected_response',
  'bad_cookie',
  'decrypt_failed',
  'replayed_counter',
  'counter_limit',
  'expired_keypair',
  'bad_inner_packet',
  'spoofed_source',
  'no_private_key',
  // outbound packets
  'no_route',
  'bad_outbound_packet',
  'staged_overflow',
  'no_endpoint',
  'handshake_gave_up',
  'queue_full',
  'send_failed',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];
