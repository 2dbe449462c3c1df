/**
 * The crypto pool (src/tun/crypto-pool.ts) as the daemon drives it: sealBatch and openBatch in
 * place over 1420-byte packets in shared memory, 512 packets per call (a full send or receive
 * batch of one peer) and 2,880 (the most one UDP receive call hands over), with 0 to 3 workers.
 * One operation is one call; the summary gives packets/s, the speed-up over 0 workers (the
 * calling thread alone) and the cores the process got while the case ran. The speed-up needs
 * idle cores: on a machine shared with other work the workers only get what is scheduled for
 * them, and the cores figure shows how much that was.
 */
import { randomBytes } from 'node:crypto';
import {
  nativeAead,
  nativeAeadAvailable,
  nativeAeadUnavailableReason,
} from '../../src/tun/aead.js';
import { createCryptoPool, type CryptoPool } from '../../src/tun/crypto-pool.js';
import { batch, openCase } from './batch-cases.js';
import type { MicroCase, MicroResult, MicroSuite } from './harness.js';

const SIZE = 1420;
const COUNTS = [512, 2880] as const;
const WORKERS = [0, 1, 2, 3] as const;
const key = new Uint8Array(randomBytes(32));
let pools: CryptoPool[] = [];

function caseName(op: string, count: number, workers: number): string {
  return `${op} ${SIZE} B ×${count}, ${workers} worker${workers === 1 ? '' : 's'}`;
}

export const cryptoPoolSuite: MicroSuite = {
  name: 'crypto-pool',
  check() {
    if (!nativeAeadAvailable()) {
      throw new Error(`crypto-pool: ${nativeAeadUnavailableReason()} (skip with --only)`);
    }
    const pool = createCryptoPool(1);
    try {
      const b = batch(SIZE, 2880, (n) => pool.allocSlab(n));
      const want = Uint8Array.from(b.slab);
      nativeAead.sealBatch(key, want, b.offsets, b.plainLengths, b.counters, 2880);
      pool.sealBatch(key, b.slab, b.offsets, b.plainLengths, b.counters, 2880);
      if (Buffer.compare(want, b.slab) !== 0) throw new Error('crypto-pool: seal differs');
      openCase(pool, key, SIZE, 2880, (n) => pool.allocSlab(n))();
    } finally {
      void pool.close();
    }
  },
  cases() {
    pools = WORKERS.map((w) => createCryptoPool(w));
    const out: MicroCase[] = [];
    for (const count of COUNTS) {
      for (const [w, pool] of pools.entries()) {
        const alloc = (n: number) => pool.allocSlab(n);
        const b = batch(SIZE, count, alloc);
        out.push({
          name: caseName('seal', count, w),
          bytes: SIZE * count,
          fn: () => pool.sealBatch(key, b.slab, b.offsets, b.plainLengths, b.counters, count),
        });
        out.push({
          name: caseName('open', count, w),
          bytes: SIZE * count,
          fn: openCase(pool, key, SIZE, count, alloc),
        });
      }
    }
    return out;
  },
  summarize(results) {
    return summarize(results);
  },
  dispose() {
    for (const p of pools) void p.close();
    pools = [];
  },
};

/**
 * Per operation and batch size, a table by worker count: packets/s, the speed-up over 0 workers,
 * the cores the process got, and packets per core-second (what the pool costs: a split batch
 * that pays no overhead keeps the 0-worker figure).
 */
export function summarize(results: readonly MicroResult[]): string[] {
  const lines: string[] = [];
  const byName = new Map(results.map((r) => [r.name, r]));
  const mpps = (x: number) => `${(x / 1e6).toFixed(2)}M`;
  for (const count of COUNTS) {
    for (const op of ['seal', 'open']) {
      const base = byName.get(caseName(op, count, 0))?.opsPerSec;
      if (base === undefined) continue;
      lines.push(
        `${`${op} ${SIZE} B ×${count}`.padEnd(19)} packets/s  speed-up  cores  per core-second`,
      );
      for (const w of WORKERS) {
        const r = byName.get(caseName(op, count, w));
        if (!r) continue;
        const pps = r.opsPerSec * count;
        lines.push(
          `  ${`${w} worker${w === 1 ? '' : 's'}`.padEnd(16)} ${mpps(pps).padStart(9)}` +
            ` ${`${(r.opsPerSec / base).toFixed(2)}x`.padStart(9)} ${r.cpuCores.toFixed(2).padStart(6)}` +
            ` ${mpps(pps / r.cpuCores).padStart(16)}`,
        );
      }
    }
  }
  return lines;
}
