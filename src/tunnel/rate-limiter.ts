/**
 * Per-source token bucket for handshake messages under load (PROTOCOL.md §12), as the kernel's
 * ratelimiter.c: 20 packets/s with a burst of 5, IPv4 keyed by address and IPv6 by its /64 (one
 * host owns a whole /64, so keying the full address would let it pick new sources freely).
 * Time is passed in; the table is bounded so a flood from many sources cannot grow memory.
 */
import { RATE_LIMIT_BURST, RATE_LIMIT_PACKETS_PER_SECOND } from '../constants.js';

/** Entries idle this long are dropped by gc(); their bucket would be full again anyway. */
const IDLE_MS = 1_000;
/** Most sources tracked at once; new sources beyond it are denied (kernel: same policy). */
export const RATE_LIMITER_MAX_ENTRIES = 65_536;

const PACKET_COST_MS = 1_000 / RATE_LIMIT_PACKETS_PER_SECOND;
const TOKEN_MAX_MS = PACKET_COST_MS * RATE_LIMIT_BURST;

interface Bucket {
  /** Tokens as milliseconds of credit; one packet costs PACKET_COST_MS. */
  tokens: number;
  lastMs: number;
}

/**
 * IPv4 keys are the address as a number (< 2^32); IPv6 /64 keys are 8-character strings, since
 * 64 bits do not fit a number exactly. Handshakes are rare next to data, so the string is fine.
 */
export function keyOf(address: Uint8Array): number | string | null {
  if (address.length === 4) {
    return ((address[0]! << 24) | (address[1]! << 16) | (address[2]! << 8) | address[3]!) >>> 0;
  }
  if (address.length === 16) {
    return String.fromCharCode(
      (address[0]! << 8) | address[1]!,
      (address[2]! << 8) | address[3]!,
      (address[4]! << 8) | address[5]!,
      (address[6]! << 8) | address[7]!,
    );
  }
  return null;
}

export class RateLimiter {
  private readonly buckets = new Map<number | string, Bucket>();
  private readonly maxEntries: number;

  /**
   * `allowWhenFull`: what a new source gets once the table is full. The DH limiter denies (the
   * kernel's policy); the cookie-reply limiter allows, so a flood from random spoofed sources
   * that fills the table cannot stop legitimate peers from getting cookies.
   */
  constructor(
    maxEntries: number = RATE_LIMITER_MAX_ENTRIES,
    private readonly allowWhenFull = false,
  ) {
    this.maxEntries = maxEntries;
  }

  /**
   * Whether a handshake from `address` (4 or 16 bytes) may be processed now; counts it if so.
   * `nowMs` is monotonic time in ms. Addresses of any other length are denied.
   */
  allow(address: Uint8Array, nowMs: number): boolean {
    const key = keyOf(address);
    if (key === null) return false;
    const b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= this.maxEntries) return this.allowWhenFull;
      this.buckets.set(key, { tokens: TOKEN_MAX_MS - PACKET_COST_MS, lastMs: nowMs });
      return true;
    }
    // A clock that goes backwards (it should not) earns nothing rather than a negative refill.
    const elapsed = Math.max(0, nowMs - b.lastMs);
    b.tokens = Math.min(TOKEN_MAX_MS, b.tokens + elapsed);
    b.lastMs = nowMs;
    if (b.tokens < PACKET_COST_MS) return false;
    b.tokens -= PACKET_COST_MS;
    return true;
  }

  /** Whether allow() would pass now, without counting anything. */
  wouldAllow(address: Uint8Array, nowMs: number): boolean {
    const key = keyOf(address);
    if (key === null) return false;
    const b = this.buckets.get(key);
    if (b === undefined) return this.buckets.size < this.maxEntries || this.allowWhenFull;
    return Math.min(TOKEN_MAX_MS, b.tokens + Math.max(0, nowMs - b.lastMs)) >= PACKET_COST_MS;
  }

  /** Drops entries idle for more than 1 s; called from the device tick. */
  gc(nowMs: number): void {
    for (const [key, b] of this.buckets) {
      if (nowMs - b.lastMs > IDLE_MS) this.buckets.delete(key);
    }
  }

  /** Number of sources tracked. */
  get size(): number {
    return this.buckets.size;
  }
}

/** One token bucket for the whole device: `perSecond` tokens a second, at most `burst` saved. */
export class GlobalBudget {
  private tokens: number;
  private lastMs = -Infinity;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number = perSecond,
  ) {
    this.tokens = burst;
  }

  private refill(nowMs: number): void {
    if (nowMs > this.lastMs) {
      const earned =
        this.lastMs === -Infinity ? this.burst : ((nowMs - this.lastMs) * this.perSecond) / 1000;
      this.tokens = Math.min(this.burst, this.tokens + earned);
      this.lastMs = nowMs;
    }
  }

  /** Whether take() would pass now, without taking anything. */
  wouldAllow(nowMs: number): boolean {
    this.refill(nowMs);
    return this.tokens >= 1;
  }

  /** Takes one token if there is one. */
  take(nowMs: number): boolean {
    this.refill(nowMs);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
