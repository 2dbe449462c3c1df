/**
 * TAI64N timestamps (PROTOCOL.md §5): 8 bytes big-endian 2^62 + 10 + unix seconds, then 4 bytes
 * big-endian nanoseconds rounded down to a multiple of 2^24 ns, which hides the sender's timer
 * precision. Responders accept an initiation only if its timestamp is greater than the last one.
 */

export const TAI64N_SIZE = 12;
const NANOS_MASK = ~0xffffff >>> 0;

/** Encodes a wall-clock time given in (possibly fractional) milliseconds since the Unix epoch. */
export function tai64n(unixMs: number): Uint8Array {
  const out = new Uint8Array(TAI64N_SIZE);
  const v = new DataView(out.buffer);
  const seconds = Math.floor(unixMs / 1000);
  const nanos = Math.floor((unixMs - seconds * 1000) * 1e6);
  // 0x400000000000000a + seconds, split into two u32 words (seconds < 2^32 for millennia).
  const low = seconds + 0x0a;
  v.setUint32(0, 0x40000000 + Math.floor(low / 0x1_0000_0000), false);
  v.setUint32(4, low >>> 0, false);
  v.setUint32(8, (nanos & NANOS_MASK) >>> 0, false);
  return out;
}

/** Bytewise comparison: > 0 when a is later than b. */
export function compareTai64n(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < TAI64N_SIZE; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return 0;
}
