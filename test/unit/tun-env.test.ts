// The TUN switches from the environment: off words in any case, defaults when unset or empty.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_TUN_GRO,
  DEFAULT_TUN_OFFLOAD,
  tunGroWanted,
  tunOffloadWanted,
} from '../../src/tun/linux.js';

test('WG_TS_TUN_OFFLOAD and WG_TS_TUN_GRO', () => {
  for (const [fn, name, def] of [
    [tunOffloadWanted, 'WG_TS_TUN_OFFLOAD', DEFAULT_TUN_OFFLOAD],
    [tunGroWanted, 'WG_TS_TUN_GRO', DEFAULT_TUN_GRO],
  ] as const) {
    assert.equal(fn({}), def, `${name} unset`);
    assert.equal(fn({ [name]: ' ' }), def, `${name} empty`);
    for (const off of ['0', 'false', 'OFF', ' no ']) assert.equal(fn({ [name]: off }), false, off);
    for (const on of ['1', 'true', 'on', 'yes']) assert.equal(fn({ [name]: on }), true, on);
  }
});
