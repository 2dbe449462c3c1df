/**
 * The replay window: the kernel's numbered self-test (drivers/net/wireguard/selftest/counter.c,
 * also wireguard-go replay/replay_test.go) with the exact expected results, then random sequences
 * checked against a Set-based model of the same rule.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayWindow } from '../../src/tunnel/replay.js';
import { REJECT_AFTER_MESSAGES, REPLAY_WINDOW_SIZE } from '../../src/constants.js';

const W = REPLAY_WINDOW_SIZE;
const T_LIM = W + 1;
const R = REJECT_AFTER_MESSAGES;

/** Runs `steps` as [counter, expected] and reports the 1-based number of the first mismatch. */
function runCases(win: ReplayWindow, steps: readonly (readonly [number, boolean])[]): void {
  steps.forEach(([n, want], i) => {
    assert.equal(win.check(n), want, `case ${i + 1}: check(${n}) should be ${want}`);
  });
}

test('W is 127 blocks of 64 bits, as in wireguard-go on 64-bit hosts', () => {
  assert.equal(W, 8128);
});

test('kernel numbered cases 1-34', () => {
  const win = new ReplayWindow();
  runCases(win, [
    [0, true], //  1
    [1, true], //  2
    [1, false], //  3
    [9, true], //  4
    [8, true], //  5
    [7, true], //  6
    [7, false], //  7
    [T_LIM, true], //  8
    [T_LIM - 1, true], //  9
    [T_LIM - 1, false], // 10
    [T_LIM - 2, true], // 11
    [2, true], // 12
    [2, false], // 13
    [T_LIM + 16, true], // 14
    [3, false], // 15
    [T_LIM + 16, false], // 16
    [T_LIM * 4, true], // 17
    [T_LIM * 4 - (T_LIM - 1), true], // 18
    [10, false], // 19
    [T_LIM * 4 - T_LIM, false], // 20
    [T_LIM * 4 - (T_LIM + 1), false], // 21
    [T_LIM * 4 - (T_LIM - 2), true], // 22
    [T_LIM * 4 + 1 - T_LIM, false], // 23
    [0, false], // 24
    [R, false], // 25
    [R - 1, true], // 26
    [R, false], // 27
    [R - 1, false], // 28
    [R - 2, true], // 29
    [R + 1, false], // 30
    // R + 2 = 2^53 + 1 is not a JS number; it rounds to 2^53, still past the limit.
    [R + 2, false], // 31
    [R - 2, false], // 32
    [R - 3, true], // 33
    [0, false], // 34
  ]);
});

test('kernel bulk cases', async (t) => {
  const range = (from: number, to: number): number[] => {
    const out: number[] = [];
    if (from <= to) for (let i = from; i <= to; i++) out.push(i);
    else for (let i = from; i >= to; i--) out.push(i);
    return out;
  };
  const fresh = (ns: number[]): [number, boolean][] => ns.map((n) => [n, true]);
  const bulk: [string, [number, boolean][]][] = [
    ['1: 1..W then 0', [...fresh(range(1, W)), [0, true], [0, false]]],
    ['2: 2..W+1 then 1, 0 too old', [...fresh(range(2, W + 1)), [1, true], [0, false]]],
    ['3: W..0 descending', fresh(range(W, 0))],
    ['4: W+1..1 descending, 0 too old', [...fresh(range(W + 1, 1)), [0, false]]],
    ['5: W..1 then W+1, 0 too old', [...fresh(range(W, 1)), [W + 1, true], [0, false]]],
    ['6: W..1 then 0, W+1', [...fresh(range(W, 1)), [0, true], [W + 1, true]]],
  ];
  for (const [name, steps] of bulk) {
    await t.test(name, () => runCases(new ReplayWindow(), steps));
  }
});

test('reset forgets every counter, including the highest', () => {
  const win = new ReplayWindow();
  assert.equal(win.check(100_000), true);
  assert.equal(win.check(5), false);
  win.reset();
  assert.equal(win.check(5), true);
  assert.equal(win.check(100_000), true);
  assert.equal(win.check(100_000), false);
});

test('rejects negative, fractional and NaN counters', () => {
  const win = new ReplayWindow();
  for (const bad of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    assert.equal(win.check(bad), false, String(bad));
  }
  assert.equal(win.check(0), true);
});

test('a jump of more than the whole ring clears stale bits', () => {
  const win = new ReplayWindow();
  for (let i = 0; i < 200; i++) assert.equal(win.check(i), true);
  // Same ring slots as 0..199, one and two laps later.
  const lap = 128 * 64;
  for (let i = 0; i < 200; i++) assert.equal(win.check(lap * 3 + i), true);
  assert.equal(win.check(lap * 3 + 5), false);
  assert.equal(win.check(lap * 3 + 199 - W), true);
  assert.equal(win.check(lap * 3 + 198 - W), false);
});

/** Deterministic xorshift32, so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/** The rule stated directly: fresh iff below the limit, unseen, and not more than W behind. */
class ReferenceWindow {
  private readonly seen = new Set<number>();
  private last = 0;
  check(c: number): boolean {
    if (c >= R || this.seen.has(c)) return false;
    if (c <= this.last && this.last - c > W) return false;
    this.seen.add(c);
    if (c > this.last) this.last = c;
    return true;
  }
}

test('random sequences agree with the Set-based model', () => {
  // Bases above 2^32 blocks exercise the float block arithmetic; the last ends near the limit.
  const bases = [0, 2 ** 20, 2 ** 40 + 12345, 2 ** 52 + 7, R - 400_000];
  let seed = 1;
  for (const base of bases) {
    const next = rng(seed++);
    const win = new ReplayWindow();
    const ref = new ReferenceWindow();
    let top = base;
    for (let i = 0; i < 20_000; i++) {
      const r = next();
      let c: number;
      if (r < 0.45)
        c = top + Math.floor(next() * 40); // mostly in order
      else if (r < 0.8)
        c = top - Math.floor(next() * (W + 200)); // reordered or too old
      else if (r < 0.97)
        c = top + Math.floor(next() * 3 * W); // jumps
      else c = top + Math.floor(next() * 40 * W); // jumps past the whole ring
      c = Math.max(0, Math.min(c, R + 10));
      if (c > top) top = c;
      const want = ref.check(c);
      assert.equal(win.check(c), want, `seed ${seed - 1} step ${i}: check(${c})`);
    }
  }
});
