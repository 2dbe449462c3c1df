/**
 * The per-keypair anti-replay window (RFC 6479 bitmap ring; PROTOCOL.md §7), laid out like
 * wireguard-go's `replay/replay.go`: 128 blocks of 64 bits, of which 127 are the window
 * (W = 8128), the last one being the block the newest counter is in.
 *
 * Counters are JS numbers (exact up to 2^53 − 1, see REJECT_AFTER_MESSAGES), so block numbers can
 * exceed 32 bits: they are computed with float division (exact for powers of two) instead of
 * shifts. A 64-bit block is two Uint32 words, so there is no BigInt and no allocation per packet.
 */
import { REJECT_AFTER_MESSAGES, REPLAY_WINDOW_SIZE } from '../constants.js';

const BLOCK_BITS = 64;
const BLOCKS = 128; // ring size, a power of two
const BLOCK_MASK = BLOCKS - 1;

export class ReplayWindow {
  /** Highest counter accepted so far (0 before any, which is harmless: bit 0 is still clear). */
  private last = 0;
  /** Block b of the ring is words[2b] (bits 0..31) and words[2b + 1] (bits 32..63). */
  private readonly words = new Uint32Array(BLOCKS * 2);
  private readonly limit: number;

  /** `limit` is exclusive; only tests change it. */
  constructor(limit: number = REJECT_AFTER_MESSAGES) {
    this.limit = limit;
  }

  /** Forget everything (new keypair). */
  reset(): void {
    this.last = 0;
    this.words.fill(0);
  }

  /**
   * Check-and-update for a counter that passed authentication. Returns true if the packet is
   * fresh (and records it), false if it is a replay, too old for the window, or past the limit.
   */
  check(counter: number): boolean {
    // The negated form also rejects NaN; a fractional counter cannot come off the wire.
    if (!(counter >= 0 && counter < this.limit) || counter !== Math.floor(counter)) return false;
    const block = Math.floor(counter / BLOCK_BITS);
    if (counter > this.last) {
      // Slide forward: clear the blocks the window now covers anew (at most the whole ring).
      const current = Math.floor(this.last / BLOCK_BITS);
      const steps = Math.min(block - current, BLOCKS);
      const words = this.words;
      for (let i = 1; i <= steps; i++) {
        // `&` on an integer below 2^53 takes it mod 2^32 first, so this is exact.
        const w = ((current + i) & BLOCK_MASK) << 1;
        words[w] = 0;
        words[w + 1] = 0;
      }
      this.last = counter;
    } else if (this.last - counter > REPLAY_WINDOW_SIZE) {
      return false;
    }
    const bit = counter - block * BLOCK_BITS;
    const w = ((block & BLOCK_MASK) << 1) | (bit >>> 5);
    const mask = (1 << (bit & 31)) >>> 0;
    const old = this.words[w]!;
    if ((old & mask) !== 0) return false;
    this.words[w] = old | mask;
    return true;
  }
}
