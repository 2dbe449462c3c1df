// The offload switches from the environment: off words in any case, defaults when unset or empty.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_TUN_GRO,
  DEFAULT_TUN_OFFLOAD,
  tunGroWanted,
  tunOffloadWanted,
} from '../../src/tun/linux.js';
import { udpOffloadWanted } from '../../src/tun/udp.js';

test('WG_TS_TUN_OFFLOAD, WG_TS_TUN_GRO, WG_TS_UDP_GSO and WG_TS_UDP_GRO', () => {
  const udpGso = (env: NodeJS.ProcessEnv): boolean => udpOffloadWanted('WG_TS_UDP_GSO', env);
  const udpGro = (env: NodeJS.ProcessEnv): boolean => udpOffloadWanted('WG_TS_UDP_GRO', env);
  for (const [fn, name, def] of [
    [tunOffloadWanted, 'WG_TS_TUN_OFFLOAD', DEFAULT_TUN_OFFLOAD],
    [tunGroWanted, 'WG_TS_TUN_GRO', DEFAULT_TUN_GRO],
    [udpGso, 'WG_TS_UDP_GSO', true],
    [udpGro, 'WG_TS_UDP_GRO', true],
  ] as const) {
    assert.equal(fn({}), def, `${name} unset`);
    assert.equal(fn({ [name]: ' ' }), def, `${name} empty`);
    for (const off of ['0', 'false', 'OFF', ' no ']) assert.equal(fn({ [name]: off }), false, off);
    for (const on of ['1', 'true', 'on', 'yes']) assert.equal(fn({ [name]: on }), true, on);
  }
});
