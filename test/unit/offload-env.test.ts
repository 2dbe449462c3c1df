// The offload switches from the environment: off words in any case, defaults when unset or empty.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  COALESCE,
  DEFAULT_TUN_GRO,
  DEFAULT_TUN_OFFLOAD,
  DEFAULT_TUN_UDP_GRO,
  TUN_F,
  coalesceBits,
  tunGroWanted,
  tunOffloadWanted,
  tunUdpGroWanted,
} from '../../src/tun/linux.js';
import { udpOffloadWanted } from '../../src/tun/udp.js';

test('WG_TS_TUN_OFFLOAD, WG_TS_TUN_GRO, WG_TS_TUN_UDP_GRO, WG_TS_UDP_GSO and WG_TS_UDP_GRO', () => {
  const udpGso = (env: NodeJS.ProcessEnv): boolean => udpOffloadWanted('WG_TS_UDP_GSO', env);
  const udpGro = (env: NodeJS.ProcessEnv): boolean => udpOffloadWanted('WG_TS_UDP_GRO', env);
  for (const [fn, name, def] of [
    [tunOffloadWanted, 'WG_TS_TUN_OFFLOAD', DEFAULT_TUN_OFFLOAD],
    [tunGroWanted, 'WG_TS_TUN_GRO', DEFAULT_TUN_GRO],
    [tunUdpGroWanted, 'WG_TS_TUN_UDP_GRO', DEFAULT_TUN_UDP_GRO],
    [udpGso, 'WG_TS_UDP_GSO', true],
    [udpGro, 'WG_TS_UDP_GRO', true],
  ] as const) {
    assert.equal(fn({}), def, `${name} unset`);
    assert.equal(fn({ [name]: ' ' }), def, `${name} empty`);
    for (const off of ['0', 'false', 'OFF', ' no ']) assert.equal(fn({ [name]: off }), false, off);
    for (const on of ['1', 'true', 'on', 'yes']) assert.equal(fn({ [name]: on }), true, on);
  }
});

test('TUN write coalescing: TCP with a 10-byte header, UDP only where the kernel granted USO', () => {
  const tso = TUN_F.CSUM | TUN_F.TSO4 | TUN_F.TSO6;
  const uso = tso | TUN_F.USO4 | TUN_F.USO6;
  const both = COALESCE.TCP | COALESCE.UDP;
  assert.equal(coalesceBits(10, uso, {}), both);
  assert.equal(coalesceBits(10, tso, {}), COALESCE.TCP, 'kernel < 6.2: no GSO_UDP_L4 frames');
  assert.equal(coalesceBits(10, -1, {}), COALESCE.TCP, 'inherited fd: offloads unknown');
  assert.equal(coalesceBits(0, uso, {}), 0, 'no virtio_net_hdr, no super-packets');
  assert.equal(coalesceBits(10, uso, { WG_TS_TUN_UDP_GRO: '0' }), COALESCE.TCP);
  assert.equal(coalesceBits(10, uso, { WG_TS_TUN_GRO: 'off' }), COALESCE.UDP);
  assert.equal(coalesceBits(10, uso, { WG_TS_TUN_GRO: '0', WG_TS_TUN_UDP_GRO: 'no' }), 0);
});
