/**
 * The shared-memory descriptor between the crypto pool and one worker: a control block, then
 * the per-item arrays of one share of a batch, then the keys. Both sides build the same views.
 */

export const MAX_ITEMS = 512;
export const MAX_KEYS = 64;

/** Control words (Int32). */
export const CTL = {
  seq: 0, // bumped by the pool to start a job
  done: 1, // set to seq by the worker when the job is finished
  op: 2,
  count: 3,
  buffer: 4, // id of the shared slab
  base: 5, // byte offset of the slab view in its buffer
  keys: 6, // number of keys
  error: 7,
  spin: 8, // a word nobody notifies: a 1 ms sleep while waiting for a buffer announcement
} as const;

export const OP_SEAL = 1;
export const OP_OPEN = 2;
export const OP_STOP = 3;

const CTL_BYTES = 64;
const OFFSETS = CTL_BYTES;
const LENGTHS = OFFSETS + 4 * MAX_ITEMS;
const KEY_IDX = LENGTHS + 4 * MAX_ITEMS;
const COUNTERS = KEY_IDX + 4 * MAX_ITEMS; // 8-aligned: 64 + 3 * 2048
const OK = COUNTERS + 8 * MAX_ITEMS;
const KEYS = OK + MAX_ITEMS;
export const CONTROL_BYTES = KEYS + 32 * MAX_KEYS;

export interface ControlViews {
  readonly ctl: Int32Array;
  readonly offsets: Int32Array;
  readonly lengths: Int32Array;
  readonly keyIdx: Int32Array;
  readonly counters: Float64Array;
  readonly ok: Uint8Array;
  readonly keys: Uint8Array;
}

export function layout(sab: SharedArrayBuffer): ControlViews {
  return {
    ctl: new Int32Array(sab, 0, CTL_BYTES / 4),
    offsets: new Int32Array(sab, OFFSETS, MAX_ITEMS),
    lengths: new Int32Array(sab, LENGTHS, MAX_ITEMS),
    keyIdx: new Int32Array(sab, KEY_IDX, MAX_ITEMS),
    counters: new Float64Array(sab, COUNTERS, MAX_ITEMS),
    ok: new Uint8Array(sab, OK, MAX_ITEMS),
    keys: new Uint8Array(sab, KEYS, 32 * MAX_KEYS),
  };
}
