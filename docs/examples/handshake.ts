// Two wireguard-ts Devices talking in memory: a handshake and one packet, on a clock you drive.
// test/unit/library-example.test.ts runs this file and checks docs/library.md shows it verbatim.
import { randomBytes } from 'node:crypto';
import {
  Device,
  generatePrivateKey,
  parseEndpoint,
  parsePrefix,
  publicKey,
} from '../../src/index.js';
import type { DeviceOutput, Endpoint, Peer } from '../../src/index.js';

export interface ExampleResult {
  readonly sent: Uint8Array;
  readonly delivered: readonly Uint8Array[];
  readonly aliceToBob: Peer;
  readonly alice: Device;
  readonly bob: Device;
}

export function twoDevicesInMemory(): ExampleResult {
  const env = { randomBytes: (n: number) => new Uint8Array(randomBytes(n)), wallClockMs: Date.now };
  const alice = new Device(env);
  const bob = new Device(env);
  const aliceKey = generatePrivateKey();
  const bobKey = generatePrivateKey();
  alice.setPrivateKey(aliceKey);
  bob.setPrivateKey(bobKey);
  const aliceAddr = parseEndpoint('192.0.2.1:51820');
  const bobAddr = parseEndpoint('192.0.2.2:51820');

  const aliceToBob = alice.addPeer(publicKey(bobKey))!;
  alice.addAllowedIp(aliceToBob, parsePrefix('10.0.0.2/32'));
  alice.setEndpoint(aliceToBob, bobAddr);
  const bobToAlice = bob.addPeer(publicKey(aliceKey))!;
  bob.addAllowedIp(bobToAlice, parsePrefix('10.0.0.1/32'));

  // The "network": each datagram is handed to the other device, with its source address.
  const delivered: Uint8Array[] = [];
  const wire: { data: Uint8Array; from: Endpoint; to: Device }[] = [];
  const outOf = (from: Endpoint, to: Device): DeviceOutput => ({
    send: (data) => wire.push({ data, from, to }),
    deliver: (packet) => delivered.push(packet),
  });
  const aliceOut = outOf(aliceAddr, bob);
  const bobOut = outOf(bobAddr, alice);

  // An IPv4 header from 10.0.0.1 to 10.0.0.2, as read from a TUN device.
  const sent = new Uint8Array(20);
  sent.set([0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
  let now = 0; // milliseconds on your clock; the device reads none
  alice.sendPacket(sent, now, aliceOut); // staged; a handshake initiation goes out
  while (wire.length > 0) {
    const { data, from, to } = wire.shift()!;
    to.receiveDatagram(data, from, now, to === bob ? bobOut : aliceOut);
  }
  now += 100;
  alice.tick(now, aliceOut); // timers run when you tick
  return { sent, delivered, aliceToBob, alice, bob }; // delivered[0]: the packet, decrypted by bob
}
