/**
 * A crypto pool worker (see crypto-pool.ts): waits on its control word, runs the native batch
 * AEAD over its share of a batch in shared memory, and signals completion. No postMessage per
 * batch: the descriptor lives in a SharedArrayBuffer; shared slabs are announced once on a port.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { nativeAead } from './aead.js';
import { CTL, layout, OP_OPEN, OP_SEAL, OP_STOP } from './crypto-pool-layout.js';

const { control, port } = workerData as { control: SharedArrayBuffer; port: MessagePort };
const v = layout(control);
const buffers = new Map<number, SharedArrayBuffer>();

function drain(): void {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    const msg = m.message as { id: number; buffer: SharedArrayBuffer };
    buffers.set(msg.id, msg.buffer);
  }
}

let seen = 0;
for (;;) {
  Atomics.wait(v.ctl, CTL.seq, seen);
  const seq = Atomics.load(v.ctl, CTL.seq);
  if (seq === seen) continue;
  seen = seq;
  const op = v.ctl[CTL.op]!;
  if (op === OP_STOP) break;
  drain();
  const id = v.ctl[CTL.buffer]!;
  // A buffer announced just before this job may still be on its way.
  while (!buffers.has(id)) {
    Atomics.wait(v.ctl, CTL.spin, 0, 1);
    drain();
  }
  const count = v.ctl[CTL.count]!;
  const slab = new Uint8Array(buffers.get(id)!, v.ctl[CTL.base]!);
  const keys = v.keys.subarray(0, 32 * v.ctl[CTL.keys]!);
  try {
    if (op === OP_SEAL) {
      nativeAead.sealBatch(keys, slab, v.offsets, v.lengths, v.counters, count, v.keyIdx);
    } else if (op === OP_OPEN) {
      nativeAead.openBatch(keys, slab, v.offsets, v.lengths, v.counters, count, v.ok, v.keyIdx);
    }
    v.ctl[CTL.error] = 0;
  } catch {
    v.ctl[CTL.error] = 1;
  }
  Atomics.store(v.ctl, CTL.done, seq);
  Atomics.notify(v.ctl, CTL.done);
}
