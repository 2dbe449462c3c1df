// The README's library example, kept runnable: two Devices talking in memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  Device,
  generatePrivateKey,
  parseEndpoint,
  parsePrefix,
  publicKey,
  type DeviceOutput,
  type Endpoint,
} from '../../src/index.js';

test('README example: two Devices talk in memory', () => {
  // --- README example start
  const env = { randomBytes: (n: number) => new Uint8Array(randomBytes(n)), wallClockMs: Date.now };
  const alice = new Device(env);
  const bob = new Device(env);
  const aliceKey = generatePrivateKey();
  const bobKey = generatePrivateKey();
  alice.setPrivateKey(aliceKey);
  bob.setPrivateKey(bobKey);
  const aliceAddr = parseEndpoint('192.0.2.1:51820');
  const bobAddr = parseEndpoint('192.0.2.2:51820');

  const toBob = alice.addPeer(publicKey(bobKey))!;
  alice.addAllowedIp(toBob, parsePrefix('10.0.0.2/32'));
  alice.setEndpoint(toBob, bobAddr);
  const toAlice = bob.addPeer(publicKey(aliceKey))!;
  bob.addAllowedIp(toAlice, parsePrefix('10.0.0.1/32'));

  // The "network": datagrams are handed straight to the other device.
  const delivered: Uint8Array[] = [];
  let now = 0;
  const wire: { data: Uint8Array; from: Endpoint; to: Device }[] = [];
  const outOf = (from: Endpoint, to: Device): DeviceOutput => ({
    send: (data) => wire.push({ data, from, to }),
    deliver: (packet) => delivered.push(packet),
  });
  const aliceOut = outOf(aliceAddr, bob);
  const bobOut = outOf(bobAddr, alice);

  // An IPv4 packet from 10.0.0.1 to 10.0.0.2, as read from a TUN device.
  const packet = new Uint8Array(20);
  packet.set([0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
  alice.sendPacket(packet, now, aliceOut); // staged; a handshake initiation goes out
  while (wire.length > 0) {
    const { data, from, to } = wire.shift()!;
    to.receiveDatagram(data, from, now, to === bob ? bobOut : aliceOut);
  }
  now += 100;
  alice.tick(now, aliceOut); // timers run on the caller's clock
  // --- README example end
  assert.equal(delivered.length, 1);
  assert.deepEqual(delivered[0], packet);
  assert.equal(toBob.current?.isInitiator, true);
});
