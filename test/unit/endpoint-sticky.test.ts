// Sticky sources and route MTUs in the core and the driver, without sockets: an authenticated
// packet that reached another local address moves the peer's remembered source; the driver
// forgets a source the bind reports refused or stale (counting each) and only for the peers
// using it; padding stops at a route's MTU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ipv4, World } from './harness.js';
import { Device } from '../../src/tunnel/device.js';
import { Driver } from '../../src/tunnel/driver.js';
import { AllowedIps } from '../../src/tunnel/allowed-ips.js';
import type { Bind, RouteMtu } from '../../src/tunnel/io.js';
import { MemoryTun } from '../../src/tun/memory.js';
import {
  parsePrefix,
  sameEndpointAndLocal,
  withoutLocal,
  type Endpoint,
} from '../../src/tunnel/ip.js';
import { generatePrivateKey, publicKey } from '../../src/noise/keys.js';

const quiet = { error: () => undefined, info: () => undefined, debug: () => undefined };
const remote = { family: 4, address: '192.0.2.2', port: 51820 } as const;
const viaA: Endpoint = { ...remote, local: { address: '192.0.2.1', ifindex: 2 } };
const viaB: Endpoint = { ...remote, local: { address: '192.0.2.11', ifindex: 2 } };

test('sameEndpointAndLocal tells local addresses and interfaces apart', () => {
  assert.ok(sameEndpointAndLocal(viaA, { ...viaA }));
  assert.ok(!sameEndpointAndLocal(viaA, viaB));
  assert.ok(!sameEndpointAndLocal(viaA, { ...viaA, local: { address: '192.0.2.1', ifindex: 3 } }));
  assert.ok(!sameEndpointAndLocal(viaA, remote));
  assert.ok(sameEndpointAndLocal(remote, { ...remote, local: null }));
  assert.ok(!sameEndpointAndLocal(null, remote));
  assert.deepEqual(withoutLocal(viaA), remote);
});

test('an authenticated packet to another of our addresses moves the remembered source', () => {
  const w = new World();
  const a = w.node('a', '192.0.2.1:51820');
  const b = w.node('b', '192.0.2.2:51820');
  const pa = a.peer(b, ['10.0.0.2/32']);
  b.peer(a, ['10.0.0.1/32']);
  b.send(ipv4('10.0.0.2', '10.0.0.1', 'hello'));
  w.pump();
  assert.equal(a.delivered.length, 1);
  // B's next data packet arrives at A's second address (as the bind would report it).
  b.send(ipv4('10.0.0.2', '10.0.0.1', 'again'));
  const d = w.queue.shift()!;
  a.device.receiveDatagram(d.data, viaB, w.now, a.out);
  assert.equal(a.delivered.length, 2);
  assert.equal(pa.endpoint, viaB);
  // A forged copy from elsewhere (a replay) does not move it.
  a.device.receiveDatagram(d.data, viaA, w.now, a.out);
  assert.equal(pa.endpoint, viaB);
});

/** A bind that only records what the driver gives it and answers route questions as told. */
class StubBind implements Bind {
  onSourceRefused: ((to: Endpoint, errno: number) => void) | null = null;
  onRoutesChanged: (() => void) | null = null;
  stale: boolean[] = [];
  mtus: RouteMtu[] = [];
  open(): number {
    return 51820;
  }
  setMark(): void {}
  send(datagrams: readonly Uint8Array[]): number {
    return datagrams.length;
  }
  close(): void {}
  staleSources(endpoints: readonly Endpoint[]): boolean[] {
    return endpoints.map((_, i) => this.stale[i] ?? false);
  }
  routeMtus(): readonly RouteMtu[] {
    return this.mtus;
  }
}

function driverWithPeers() {
  const device = new Device({
    randomBytes: (n) => new Uint8Array(randomBytes(n)),
    wallClockMs: () => Date.now(),
  });
  device.setPrivateKey(generatePrivateKey());
  const bind = new StubBind();
  const driver = new Driver(device, new MemoryTun('mem0'), bind, { log: quiet });
  const p1 = device.addPeer(publicKey(generatePrivateKey()))!;
  const p2 = device.addPeer(publicKey(generatePrivateKey()))!;
  const p3 = device.addPeer(publicKey(generatePrivateKey()))!;
  p1.endpoint = viaA;
  p2.endpoint = { ...viaA }; // another object, the same remote and local
  p3.endpoint = viaB;
  return { device, bind, driver, p1, p2, p3 };
}

test('a refused source is forgotten by every peer using it, and counted once', () => {
  const { bind, driver, p1, p2, p3 } = driverWithPeers();
  assert.equal(driver.sourceFallovers, 0);
  bind.onSourceRefused!(viaA, 22);
  assert.deepEqual(p1.endpoint, remote);
  assert.deepEqual(p2.endpoint, remote);
  assert.equal(p3.endpoint, viaB, 'another local address is kept');
  assert.equal(driver.sourceFallovers, 1);
});

test('after a route change, stale sources are dropped and route MTUs re-read', () => {
  const { device, bind, driver, p1, p2, p3 } = driverWithPeers();
  // staleSources is asked for the peers with a local address, in the device's order.
  bind.stale = [false, true, false];
  bind.mtus = [
    { prefix: parsePrefix('10.0.0.0/24'), mtu: 1300 },
    { prefix: parsePrefix('10.0.0.0/24'), mtu: 1280 }, // the same prefix in another table
  ];
  bind.onRoutesChanged!();
  assert.equal(p1.endpoint, viaA);
  assert.deepEqual(p2.endpoint, remote);
  assert.equal(p3.endpoint, viaB);
  assert.equal(driver.sourceFallovers, 1);
  assert.equal(device.routeMtus?.lookup(new Uint8Array([10, 0, 0, 9])), 1280);
  bind.mtus = [];
  bind.onRoutesChanged!();
  assert.equal(device.routeMtus, null);
});

test('padding stops at the MTU of a route to the destination', () => {
  const w = new World();
  const a = w.node('a', '192.0.2.1:51820');
  const b = w.node('b', '192.0.2.2:51820');
  a.peer(b, ['10.0.0.0/24']);
  b.peer(a, ['10.0.0.1/32']);
  const sizeTo = (dst: string) => {
    const before = w.log.length;
    a.send(ipv4('10.0.0.1', dst, new Uint8Array(1269))); // a 1297-byte packet
    w.pump();
    const data = w.log.slice(before).filter((d) => d.data[0] === 4 && d.data.length > 32);
    return data.at(-1)!.data.length;
  };
  assert.equal(
    sizeTo('10.0.0.2'),
    32 + 1312,
    'the link MTU (1420) leaves room for 16-byte padding',
  );
  const table = new AllowedIps<number>();
  table.insert(parsePrefix('10.0.0.2/32'), 1299);
  a.device.routeMtus = table;
  assert.equal(sizeTo('10.0.0.2'), 32 + 1299, 'padded only to the route MTU');
  assert.equal(sizeTo('10.0.0.3'), 32 + 1312, 'other destinations keep the link MTU');
});
