/**
 * UdpBind over real sockets on loopback: batches both ways on IPv4 and IPv6, port 0, ERR_IN_USE,
 * the endpoint cache, zero-copy sends from one slab, and SO_MARK (root only).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UdpBind } from '../../src/tun/udp.js';
import { native } from '../../src/tun/native.js';
import { WgError } from '../../src/errors.js';
import type { Endpoint } from '../../src/tunnel/ip.js';

const isRoot = process.getuid?.() === 0;

interface Inbox {
  datagrams: Uint8Array[];
  sources: Endpoint[];
  batchSizes: number[];
}

function openBind(port = 0): { bind: UdpBind; port: number; inbox: Inbox } {
  const bind = new UdpBind();
  const inbox: Inbox = { datagrams: [], sources: [], batchSizes: [] };
  const bound = bind.open(port, (datagrams, sources) => {
    inbox.batchSizes.push(datagrams.length);
    for (const d of datagrams) inbox.datagrams.push(Uint8Array.from(d));
    inbox.sources.push(...sources);
  });
  return { bind, port: bound, inbox };
}

async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** What an endpoint says, whatever kind of object carries it. */
function plain(e: Endpoint | undefined) {
  return e && { family: e.family, address: e.address, port: e.port, local: e.local };
}

function datagram(i: number, size: number): Uint8Array {
  const d = new Uint8Array(size);
  d.fill(i & 0xff);
  d[0] = i;
  return d;
}

test('port 0 binds v4 and v6 on the same real port; both families exchange batches', async (t) => {
  const a = openBind();
  const b = openBind();
  t.after(() => {
    a.bind.close();
    b.bind.close();
  });
  assert.ok(a.port > 0 && b.port > 0 && a.port !== b.port);
  assert.equal(a.bind.localPort, a.port);
  assert.equal(a.bind.fds.length, 2, 'an IPv4 and an IPv6 socket');

  // 64 datagrams of different sizes, copied from separate buffers: one sendmmsg.
  const batch = Array.from({ length: 64 }, (_, i) => datagram(i, 100 + i * 20));
  assert.equal(a.bind.send(batch, { family: 4, address: '127.0.0.1', port: b.port }), 64);
  await waitFor(() => b.inbox.datagrams.length === 64, '64 datagrams on v4');
  b.inbox.datagrams.forEach((d, i) => assert.deepEqual(d, batch[i]));
  for (const s of b.inbox.sources) {
    // `local`: where it arrived (IP_PKTINFO), the source an answer leaves from; lo is ifindex 1.
    assert.deepEqual(plain(s), {
      family: 4,
      address: '127.0.0.1',
      port: a.port,
      local: { address: '127.0.0.1', ifindex: 1 },
    });
  }
  assert.ok(b.inbox.batchSizes.length < 64, `batched delivery (${b.inbox.batchSizes.join(',')})`);
  // The same source yields the same Endpoint object (the cache), across batches too.
  assert.ok(b.inbox.sources.every((s) => s === b.inbox.sources[0]));

  // Reply over IPv6, to the v6 source, from views of one slab (the zero-copy path).
  const slab = new Uint8Array(8 * 1500);
  const views = Array.from({ length: 8 }, (_, i) => {
    const v = slab.subarray(i * 1500, i * 1500 + 1000 + i);
    v.fill(200 + i);
    return v;
  });
  assert.equal(b.bind.send(views, { family: 6, address: '::1', port: a.port }), 8);
  await waitFor(() => a.inbox.datagrams.length === 8, '8 datagrams on v6');
  a.inbox.datagrams.forEach((d, i) => assert.deepEqual(d, views[i]));
  assert.deepEqual(plain(a.inbox.sources[0]), {
    family: 6,
    address: '::1',
    port: b.port,
    local: { address: '::1', ifindex: 1 },
  });

  // Answering the received Endpoint object reaches the sender.
  b.inbox.datagrams.length = 0;
  assert.equal(a.bind.send([datagram(1, 60)], a.inbox.sources[0]!), 1);
  await waitFor(() => b.inbox.datagrams.length === 1, 'reply to a received endpoint');
});

test('datagrams the kernel drops while we cannot read are counted, not lost silently', async (t) => {
  const a = openBind();
  const b = openBind();
  t.after(() => {
    a.bind.close();
    b.bind.close();
  });
  const before = b.bind.kernelDrops();
  // The event loop is busy sending, so b cannot read: ~36 MB overflows its 7 MiB queue.
  // Distinct sizes, so GSO sends (and loopback delivers) each datagram as its own buffer: the
  // kernel counts dropped buffers, and here a buffer is one datagram.
  const batch = Array.from({ length: 64 }, (_, i) => datagram(i, 1300 + i));
  let sent = 0;
  for (let i = 0; i < 400; i++) {
    sent += a.bind.send(batch, { family: 4, address: '127.0.0.1', port: b.port });
  }
  const dropped = () => b.bind.kernelDrops() - before;
  const end = Date.now() + 10_000;
  while (b.inbox.datagrams.length + dropped() < sent && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(b.inbox.datagrams.length + dropped(), sent, `${b.inbox.datagrams.length} read`);
  assert.ok(dropped() > 0, 'the queue overflowed');
  assert.ok(b.inbox.datagrams.length > 0, 'what was queued was read');
});

test('a large datagram (60 000 bytes) arrives whole', async (t) => {
  const a = openBind();
  const b = openBind();
  t.after(() => {
    a.bind.close();
    b.bind.close();
  });
  const big = datagram(7, 60_000);
  assert.equal(a.bind.send([big], { family: 4, address: '127.0.0.1', port: b.port }), 1);
  await waitFor(() => b.inbox.datagrams.length === 1, 'the large datagram');
  assert.deepEqual(b.inbox.datagrams[0], big);
  // Too large for UDP: not sent, not thrown, and the rest of the batch still goes.
  const tooBig = new Uint8Array(65_530);
  assert.equal(
    a.bind.send([tooBig, datagram(8, 10)], { family: 4, address: '127.0.0.1', port: b.port }),
    1,
  );
  await waitFor(() => b.inbox.datagrams.length === 2, 'the datagram after the refused one');
});

test('a taken port is ERR_IN_USE; after close it can be bound again', (t) => {
  const a = openBind();
  t.after(() => a.bind.close());
  const other = new UdpBind();
  t.after(() => other.close());
  assert.throws(
    () => other.open(a.port, () => {}),
    (e: unknown) => e instanceof WgError && e.code === 'ERR_IN_USE',
  );
  assert.equal(other.localPort, 0);
  assert.throws(
    () => other.open(65536, () => {}),
    (e: unknown) => (e as WgError).code === 'ERR_INVALID_PORT',
  );
  const port = a.port;
  a.bind.close();
  assert.equal(
    other.open(port, () => {}),
    port,
  );
});

test('a port taken only on IPv6 is ERR_IN_USE and leaves no IPv4 socket behind', (t) => {
  const addon = native();
  const v6 = addon.udpOpen(6, 0);
  t.after(() => addon.closeFd(v6.fd));
  const bind = new UdpBind();
  t.after(() => bind.close());
  assert.throws(
    () => bind.open(v6.port, () => {}),
    (e: unknown) => e instanceof WgError && e.code === 'ERR_IN_USE',
  );
  const v4 = addon.udpOpen(4, v6.port); // would fail if the bind had kept its IPv4 socket
  addon.closeFd(v4.fd);
});

test('an IPv4-mapped IPv6 endpoint is reached over IPv4', async (t) => {
  const a = openBind();
  const b = openBind();
  t.after(() => {
    a.bind.close();
    b.bind.close();
  });
  assert.equal(
    a.bind.send([datagram(3, 30)], { family: 6, address: '::ffff:127.0.0.1', port: b.port }),
    1,
  );
  await waitFor(() => b.inbox.datagrams.length === 1, 'the datagram');
  assert.equal(b.inbox.sources[0]!.family, 4);
});

test('close stops delivery and sending', async (t) => {
  const a = openBind();
  const b = openBind();
  t.after(() => {
    a.bind.close();
    b.bind.close();
  });
  const port = b.port;
  b.bind.close();
  assert.equal(
    b.bind.send([datagram(1, 10)], { family: 4, address: '127.0.0.1', port: a.port }),
    0,
  );
  a.bind.send([datagram(1, 10)], { family: 4, address: '127.0.0.1', port });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(b.inbox.datagrams.length, 0);
});

test(
  'setMark applies SO_MARK to both sockets, also across reopen',
  { skip: !isRoot && 'SO_MARK needs root (CAP_NET_ADMIN)' },
  (t) => {
    const a = openBind();
    t.after(() => a.bind.close());
    const addon = native();
    a.bind.setMark(0x1234);
    for (const fd of a.bind.fds) assert.equal(addon.udpGetMark(fd), 0x1234);
    a.bind.open(0, () => {});
    for (const fd of a.bind.fds) assert.equal(addon.udpGetMark(fd), 0x1234);
    a.bind.setMark(0);
    for (const fd of a.bind.fds) assert.equal(addon.udpGetMark(fd), 0);
  },
);
