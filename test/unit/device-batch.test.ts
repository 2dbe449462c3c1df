// The batched data path: sendPackets seals a peer's packets into one slab, receiveDatagrams
// opens datagrams that share the bind's buffer in place with one batch call. Every backend must
// give the same packets, in order, with tampered and replayed datagrams counted and dropped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4, text, World } from './harness.js';
import { nobleAead, nodeAead, type AnyAead } from '../../src/noise/aead.js';
import { nativeAead, nativeAeadAvailable } from '../../src/tun/aead.js';
import type { Endpoint } from '../../src/tunnel/ip.js';

const backends: AnyAead[] = [nodeAead, nobleAead];
if (nativeAeadAvailable()) backends.push(nativeAead);

for (const aead of backends) {
  test(`batched send and in-place batched receive (${aead.name})`, () => {
    const w = new World();
    const a = w.node('a', '192.0.2.1:51820', aead);
    const b = w.node('b', '192.0.2.2:51820', aead);
    a.peer(b, ['10.0.0.2/32']);
    b.peer(a, ['10.0.0.1/32']);
    // Handshake first.
    a.send(ipv4('10.0.0.1', '10.0.0.2', 'hello'));
    w.pump();
    assert.equal(b.delivered.length, 1);

    // 50 packets of mixed sizes in one TUN batch.
    const packets = Array.from({ length: 50 }, (_, i) =>
      ipv4('10.0.0.1', '10.0.0.2', `p${i}-` + 'x'.repeat(i * 29)),
    );
    const sent: Uint8Array[] = [];
    a.device.sendPackets(packets, w.now, {
      send: (d) => sent.push(Uint8Array.from(d)),
      deliver() {},
    });
    assert.equal(sent.length, 50);

    // As the bind hands them over: views into one receive slab.
    const total = sent.reduce((n, d) => n + d.length + 7, 0);
    const slab = new Uint8Array(total);
    const views: Uint8Array[] = [];
    let off = 3;
    for (const d of sent) {
      slab.set(d, off);
      views.push(slab.subarray(off, off + d.length));
      off += d.length + 7;
    }
    views[10]![views[10]!.length - 1]! ^= 1; // tampered tag
    const src: Endpoint = a.endpoint;
    const got: string[] = [];
    const drops: string[] = [];
    b.device.receiveDatagrams(
      views,
      views.map(() => src),
      w.now,
      {
        send() {},
        deliver: (p) => got.push(text(p)),
        drop: (r) => drops.push(r),
      },
    );
    assert.deepEqual(drops, ['decrypt_failed']);
    assert.deepEqual(
      got,
      packets.filter((_, i) => i !== 10).map((p) => text(p)),
    );

    // The same datagrams again (fresh copies): replays, except the one whose tampered copy
    // never authenticated, which is new to the window.
    const again = sent.map((d) => Uint8Array.from(d));
    const drops2: string[] = [];
    const got2: string[] = [];
    b.device.receiveDatagrams(
      again,
      again.map(() => src),
      w.now,
      {
        send() {},
        deliver: (p) => got2.push(text(p)),
        drop: (r) => drops2.push(r),
      },
    );
    assert.equal(drops2.filter((r) => r === 'replayed_counter').length, 49);
    assert.deepEqual(got2, [text(packets[10]!)]);
  });
}

for (const aead of backends) {
  test(`a receive batch that confirms the session and flushes staged packets (${aead.name})`, () => {
    const w = new World();
    const a = w.node('a', '192.0.2.1:51820', aead);
    const b = w.node('b', '192.0.2.2:51820', aead);
    a.peer(b, ['10.0.0.2/32']);
    b.peer(a, ['10.0.0.1/32']);
    // A stages 5 packets and initiates; B answers.
    for (let i = 0; i < 5; i++)
      a.send(ipv4('10.0.0.1', '10.0.0.2', `a${i}-${'y'.repeat(100 * i)}`));
    const init = w.queue.shift()!;
    b.device.receiveDatagram(init.data, init.from, w.now, b.out);
    // B has data for A before the session is confirmed: staged.
    for (let i = 0; i < 3; i++) b.send(ipv4('10.0.0.2', '10.0.0.1', `b${i}`));
    const resp = w.queue.shift()!;
    assert.equal(resp.data[0], 2);
    // A consumes the response and flushes its 5 staged packets.
    a.device.receiveDatagram(resp.data, resp.from, w.now, a.out);
    const data = w.queue.splice(0).filter((d) => d.data[0] === 4);
    assert.equal(data.length, 5);
    // B gets them as one batch in one buffer: the first confirms the session, which flushes
    // B's staged packets in the middle of the batch.
    const slab = new Uint8Array(data.reduce((n, d) => n + d.data.length, 0));
    const views: Uint8Array[] = [];
    let off = 0;
    for (const d of data) {
      slab.set(d.data, off);
      views.push(slab.subarray(off, off + d.data.length));
      off += d.data.length;
    }
    b.device.receiveDatagrams(
      views,
      views.map(() => a.endpoint),
      w.now,
      b.out,
    );
    assert.deepEqual(
      b.delivered.map((p) => text(p)),
      [0, 1, 2, 3, 4].map((i) => `a${i}-${'y'.repeat(100 * i)}`),
    );
    assert.deepEqual(b.drops, []);
    w.pump();
    assert.deepEqual(
      a.delivered.map((p) => text(p)),
      ['b0', 'b1', 'b2'],
    );
  });
}

test('a send arena smaller than the traffic: every datagram still arrives intact', () => {
  const w = new World();
  const a = w.node(
    'a',
    '192.0.2.1:51820',
    nativeAeadAvailable() ? nativeAead : nodeAead,
    256 * 1024,
  );
  const b = w.node('b', '192.0.2.2:51820', undefined, 256 * 1024);
  a.peer(b, ['10.0.0.2/32']);
  b.peer(a, ['10.0.0.1/32']);
  const want: string[] = [];
  for (let round = 0; round < 20; round++) {
    const packets = Array.from({ length: 32 }, (_, i) => {
      want.push(`r${round}p${i}` + 'z'.repeat(900));
      return ipv4('10.0.0.1', '10.0.0.2', want.at(-1)!);
    });
    a.device.sendPackets(packets, w.now, a.out);
    w.pump();
  }
  assert.deepEqual(
    b.delivered.map((p) => text(p)),
    want,
  );
  assert.deepEqual(b.drops, []);
});
