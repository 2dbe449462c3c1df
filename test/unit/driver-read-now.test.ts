/**
 * The driver reads the TUN right after writing to it (TunDevice.readNow): what the kernel answers
 * within the write (an ICMP echo reply, a TCP ACK) goes out in the same turn. Two real Devices
 * and Drivers over in-memory TUNs and an in-memory network; B's "kernel" answers each packet
 * written to it by queueing a reply without waking the device, so only readNow can deliver it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Device } from '../../src/tunnel/device.js';
import { Driver } from '../../src/tunnel/driver.js';
import { parsePrefix } from '../../src/tunnel/ip.js';
import { generatePrivateKey, publicKey } from '../../src/noise/keys.js';
import { MemoryNetwork, MemoryTun } from '../../src/tun/memory.js';
import { ipv4 } from './harness.js';

const quiet = { error: () => undefined, info: () => undefined, debug: () => undefined };

function node(network: MemoryNetwork, address: string) {
  const device = new Device({
    randomBytes: (n) => new Uint8Array(randomBytes(n)),
    wallClockMs: () => Date.now(),
  });
  const key = generatePrivateKey();
  device.setPrivateKey(key);
  const tun = new MemoryTun(`mem-${address}`);
  const bind = network.bind(address);
  const driver = new Driver(device, tun, bind, { log: quiet });
  return { device, tun, driver, pub: publicKey(key), address };
}

/** A and B with drivers started; A has B as its peer for 10.0.0.2, B knows A's key only. */
function pair() {
  const network = new MemoryNetwork();
  const a = node(network, '192.0.2.1');
  const b = node(network, '192.0.2.2');
  a.driver.start();
  b.driver.start();
  const pa = a.device.addPeer(b.pub)!;
  a.device.addAllowedIp(pa, parsePrefix('10.0.0.2/32'));
  a.device.setEndpoint(pa, { family: 4, address: b.address, port: b.driver.listenPort });
  const pb = b.device.addPeer(a.pub)!;
  const close = () => {
    a.driver.close();
    b.driver.close();
  };
  return { a, b, pb, close };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 3000;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

test('an answer the kernel queues during a TUN write is read and sent in the same turn', async () => {
  const { a, b, pb, close } = pair();
  try {
    b.device.addAllowedIp(pb, parsePrefix('10.0.0.1/32'));

    // B's kernel answers every request inside the write, as it does an ICMP echo.
    b.tun.onWrite = (p) => {
      const text = new TextDecoder().decode(p.subarray(28));
      if (text.startsWith('request'))
        b.tun.queued.push(ipv4('10.0.0.2', '10.0.0.1', `reply to ${text}`));
    };
    for (let i = 0; i < 3; i++) {
      a.tun.inject(ipv4('10.0.0.1', '10.0.0.2', `request ${i}`));
      await until(() => a.tun.written.length === i + 1, `reply ${i} at A`);
    }
    const replies = a.tun.written.map((p) => new TextDecoder().decode(p.subarray(28)));
    assert.deepEqual(replies, ['reply to request 0', 'reply to request 1', 'reply to request 2']);
    assert.equal(b.tun.queued.length, 0, 'nothing left for a wake-up that never comes');
    // One readNow per UDP batch that wrote packets (the handshake response writes none).
    assert.equal(b.tun.readNowCalls, 3);
  } finally {
    close();
  }
});

test('no TUN read after a batch that wrote nothing to the TUN (handshake, refused packet)', async () => {
  const { a, b, close } = pair();
  try {
    // A handshake and a transport packet reach B; B allows A no addresses, so nothing is
    // delivered to its TUN.
    a.tun.inject(ipv4('10.0.0.1', '10.0.0.2', 'to a peer B does not route back'));
    await until(
      () => b.device.drops.spoofed_source > 0 || b.tun.written.length > 0,
      'B to handle the packet',
    );
    assert.equal(b.tun.written.length, 0);
    assert.equal(b.tun.readNowCalls, 0);
  } finally {
    close();
  }
});
