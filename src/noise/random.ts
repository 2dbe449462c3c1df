/**
 * Random bytes from OpenSSL's CSPRNG, drawn in 4 KiB refills: one randomFillSync call costs
 * ~2 us whatever its size, and a cookie reply under a handshake flood needs 24 bytes of nonce.
 * Each draw is copied out and its pool bytes zeroed, so nothing handed out stays behind.
 */
import { randomFillSync } from 'node:crypto';

export function randomPool(size = 4096): (n: number) => Uint8Array {
  const pool = new Uint8Array(size);
  let pos = size;
  return (n) => {
    if (n > size / 4) return randomFillSync(new Uint8Array(n));
    if (pos + n > size) {
      randomFillSync(pool);
      pos = 0;
    }
    const out = pool.slice(pos, pos + n);
    pool.fill(0, pos, pos + n);
    pos += n;
    return out;
  };
}
