/** MemoryTun and MemoryNetwork/MemoryBind: the in-memory seams other tests build on. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBind, MemoryNetwork, MemoryTun } from '../../src/tun/memory.js';
import { WgError } from '../../src/errors.js';
import type { Endpoint } from '../../src/tunnel/ip.js';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Received {
  datagrams: Uint8Array[];
  sources: Endpoint[];
  batches: number;
}

function listen(bind: MemoryBind, port = 0): { port: number; got: Received } {
  const got: Received = { datagrams: [], sources: [], batches: 0 };
  const bound = bind.open(port, (datagrams, sources) => {
    got.batches++;
    got.datagrams.push(...datagrams.map((d) => Uint8Array.from(d)));
    got.sources.push(...sources);
  });
  return { port: bound, got };
}

test('MemoryTun: inject delivers one batch asynchronously, copies the packets', async () => {
  const tun = new MemoryTun('mt0');
  const batches: Uint8Array[][] = [];
  tun.start(
    (p) => batches.push(p.map((x) => Uint8Array.from(x))),
    () => assert.fail('not closed'),
  );
  const a = new Uint8Array([0x45, 1, 2]);
  tun.inject(a, new Uint8Array([0x45, 3]));
  a[1] = 99; // the caller may reuse its buffer at once
  assert.equal(batches.length, 0, 'inject must not deliver synchronously');
  await nextTurn();
  assert.equal(batches.length, 1);
  assert.deepEqual(batches[0], [new Uint8Array([0x45, 1, 2]), new Uint8Array([0x45, 3])]);
  tun.injectNow(new Uint8Array([7]));
  assert.equal(batches.length, 2);
});

test('MemoryTun: write records copies, calls onWrite, mtu follows setMtu', () => {
  const tun = new MemoryTun('mt1', 1420);
  const seen: number[] = [];
  tun.onWrite = (p) => seen.push(p[0]!);
  const buf = new Uint8Array([1, 2, 3, 4]);
  assert.equal(tun.write([buf.subarray(0, 2), buf.subarray(2)]), 2);
  buf.fill(0);
  assert.deepEqual(tun.written, [new Uint8Array([1, 2]), new Uint8Array([3, 4])]);
  assert.deepEqual(seen, [1, 3]);
  assert.equal(tun.mtu(), 1420);
  tun.setMtu(9000);
  assert.equal(tun.mtu(), 9000);
});

test('MemoryTun: remove() calls onClose once; a closed device neither reads nor writes', async () => {
  const tun = new MemoryTun();
  const reasons: string[] = [];
  let packets = 0;
  tun.start(
    (p) => (packets += p.length),
    (r) => reasons.push(r),
  );
  tun.inject(new Uint8Array([1]));
  tun.remove('gone');
  tun.remove('again');
  await nextTurn();
  assert.deepEqual(reasons, ['gone']);
  assert.equal(packets, 0);
  assert.equal(tun.write([new Uint8Array([1])]), 0);
  assert.equal(tun.isClosed, true);
  assert.throws(
    () =>
      tun.start(
        () => {},
        () => {},
      ),
    WgError,
  );
});

test('MemoryBind: delivers batches with the sender as source, v4 and v6', async () => {
  const net = new MemoryNetwork();
  const a = net.bind('127.0.0.1');
  const b = net.bind('127.0.0.2');
  const { port: pa, got: gotA } = listen(a);
  const { port: pb, got: gotB } = listen(b, 51820);
  assert.equal(pb, 51820);
  assert.ok(pa > 0 && pa !== pb);
  const payload = [new Uint8Array([1]), new Uint8Array([2, 2]), new Uint8Array([3, 3, 3])];
  assert.equal(a.send(payload, { family: 4, address: '127.0.0.2', port: pb }), 3);
  payload[0]![0] = 42; // sender buffers are copied at send time
  assert.equal(gotB.batches, 0);
  await nextTurn();
  assert.equal(gotB.batches, 1);
  assert.deepEqual(gotB.datagrams, [
    new Uint8Array([1]),
    new Uint8Array([2, 2]),
    new Uint8Array([3, 3, 3]),
  ]);
  for (const s of gotB.sources) assert.deepEqual(s, { family: 4, address: '127.0.0.1', port: pa });
  assert.deepEqual(a.endpoint, { family: 4, address: '127.0.0.1', port: pa });

  // Reply to the source endpoint as received.
  b.send([new Uint8Array([9])], gotB.sources[0]!);
  await nextTurn();
  assert.deepEqual(gotA.datagrams, [new Uint8Array([9])]);
  assert.equal(gotA.sources[0]!.port, pb);

  const c = net.bind('fd00::1');
  const d = net.bind('fd00:0::2');
  const { got: gotD, port: pd } = listen(d);
  listen(c, 7);
  assert.equal(c.send([new Uint8Array([6])], { family: 4, address: '127.0.0.2', port: pb }), 0);
  c.send([new Uint8Array([6])], { family: 6, address: 'fd00::2', port: pd });
  await nextTurn();
  assert.deepEqual(gotD.sources, [{ family: 6, address: 'fd00::1', port: 7 }]);
  assert.equal(net.delivered, 5);
});

test('MemoryBind: taken port is ERR_IN_USE; close frees it; closed binds neither send nor get', async () => {
  const net = new MemoryNetwork();
  const a = net.bind();
  const b = net.bind();
  const { port } = listen(a, 4000);
  assert.throws(
    () => listen(b, 4000),
    (e: unknown) => e instanceof WgError && e.code === 'ERR_IN_USE',
  );
  assert.throws(
    () => b.open(70000, () => {}),
    (e: unknown) => (e as WgError).code === 'ERR_INVALID_PORT',
  );
  const sender = net.bind('127.0.0.9');
  listen(sender);
  sender.send([new Uint8Array([1])], { family: 4, address: '127.0.0.1', port });
  a.close(); // closed before delivery: the datagram finds no listener
  assert.equal(a.localPort, 0);
  await nextTurn();
  assert.equal(net.dropped, 1);
  const { got } = listen(b, 4000);
  sender.close();
  assert.equal(sender.send([new Uint8Array([1])], { family: 4, address: '127.0.0.1', port }), 0);
  await nextTurn();
  assert.equal(got.datagrams.length, 0);
  b.setMark(0x51);
  assert.equal(b.mark, 0x51);
});

test('MemoryNetwork: the drop hook loses chosen datagrams', async () => {
  const net = new MemoryNetwork();
  net.dropHook = (d) => d[0]! % 2 === 1;
  const a = net.bind();
  const b = net.bind();
  listen(a);
  const { port, got } = listen(b);
  const batch = [0, 1, 2, 3, 4, 5].map((i) => new Uint8Array([i]));
  a.send(batch, { family: 4, address: '127.0.0.1', port });
  await nextTurn();
  assert.deepEqual(
    got.datagrams.map((d) => d[0]),
    [0, 2, 4],
  );
  assert.equal(net.dropped, 3);
});
