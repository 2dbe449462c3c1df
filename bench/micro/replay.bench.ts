/**
 * Replay-window checks: in-order counters (the common case, sliding the window every 64
 * packets) and a reordered stream (counters arriving up to 32 positions late, as parallel
 * decryption produces), after checking the window accepts, rejects and slides correctly.
 */
import { REPLAY_WINDOW_SIZE } from '../../src/constants.js';
import { ReplayWindow } from '../../src/tunnel/replay.js';
import type { MicroSuite } from './harness.js';

const REORDER = 32;

export const replaySuite: MicroSuite = {
  name: 'replay',
  check() {
    const w = new ReplayWindow();
    for (let c = 0; c < 1000; c++)
      if (!w.check(c)) throw new Error(`replay: fresh counter ${c} rejected`);
    if (w.check(999) || w.check(500)) throw new Error('replay: a replayed counter was accepted');
    if (!w.check(5000) || !w.check(4990))
      throw new Error('replay: a fresh late counter was rejected');
    if (w.check(5000 - REPLAY_WINDOW_SIZE - 1))
      throw new Error('replay: a counter behind the window was accepted');
  },
  cases() {
    const inOrder = new ReplayWindow();
    let c = 0;
    const reordered = new ReplayWindow();
    let n = 0;
    return [
      { name: 'check, in order', fn: () => inOrder.check(c++) },
      {
        // Within each block of REORDER counters, deliver them in reverse order.
        name: `check, reordered by up to ${REORDER}`,
        fn: () => {
          const k = n++;
          return reordered.check(k - (k % REORDER) + (REORDER - 1 - (k % REORDER)));
        },
      },
    ];
  },
};
