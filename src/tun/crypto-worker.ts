/**
 * A crypto pool worker (see crypto-pool.ts): sleeps on the job descriptor's seq word, and for
 * each round announced takes chunks of it like the calling thread does (crypto-pool-chunks.ts).
 * No postMessage per batch; shared slabs are announced once on a port.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { workChunks } from './crypto-pool-chunks.js';
import { CTL, layout, OP_STOP } from './crypto-pool-layout.js';

/**
 * How long a worker polls for the next round before it sleeps. Back-to-back batches (a burst
 * the device reads in several calls) then skip the futex wake-up; an idle worker sleeps after.
 */
const SPIN_MS = 0.05;

const { control, port } = workerData as { control: SharedArrayBuffer; port: MessagePort };
const v = layout(control);
const buffers = new Map<number, SharedArrayBuffer>();

function drain(): void {
  for (let m = receiveMessageOnPort(port); m; m = receiveMessageOnPort(port)) {
    const msg = m.message as { id: number; buffer: SharedArrayBuffer };
    buffers.set(msg.id, msg.buffer);
  }
}

/** Returns the next seq after `seen`: polls for SPIN_MS, then sleeps. */
function nextRound(seen: number): number {
  const until = performance.now() + SPIN_MS;
  let seq = Atomics.load(v.ctl, CTL.seq);
  while (seq === seen && performance.now() < until) seq = Atomics.load(v.ctl, CTL.seq);
  while (seq === seen) {
    Atomics.wait(v.ctl, CTL.seq, seen);
    seq = Atomics.load(v.ctl, CTL.seq);
  }
  return seq;
}

/** The round's slab, or undefined while its buffer's announcement is still on its way. */
function slabOf(): Uint8Array | undefined {
  const id = v.ctl[CTL.buffer]!;
  if (!buffers.has(id)) drain();
  const buffer = buffers.get(id);
  return buffer && new Uint8Array(buffer, v.ctl[CTL.base]!, v.ctl[CTL.length]!);
}

for (let seen = 0; ;) {
  seen = nextRound(seen);
  if (v.ctl[CTL.op] === OP_STOP) break;
  // Without the buffer this worker sits the round out; the others (and the caller) do it.
  const slab = slabOf();
  if (slab) workChunks(v, seen, slab);
}
