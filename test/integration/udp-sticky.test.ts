/**
 * Sticky source addresses in UdpBind over real loopback sockets (no root needed: 127.0.0.0/8 is
 * all local): a datagram sent to 127.0.0.2 arrives with `local` 127.0.0.2, and answering its
 * Endpoint leaves from 127.0.0.2 (not the route's 127.0.0.1), for plain and GSO sends. A source
 * the kernel refuses (an address not on the host, IPv4 and IPv6; an interface that does not exist)
 * falls over once to the route's address: every datagram still arrives, the fall-over is counted
 * and reported once per send, and the batch is not resent twice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UdpBind } from '../../src/tun/udp.js';
import { ERRNO } from '../../src/tun/native.js';
import type { Endpoint } from '../../src/tunnel/ip.js';

interface End {
  bind: UdpBind;
  port: number;
  datagrams: Uint8Array[];
  sources: Endpoint[];
  refused: { to: Endpoint; errno: number }[];
}

function open(): End {
  const bind = new UdpBind();
  const end: End = { bind, port: 0, datagrams: [], sources: [], refused: [] };
  end.port = bind.open(0, (datagrams, sources) => {
    for (const d of datagrams) end.datagrams.push(Uint8Array.from(d));
    end.sources.push(...sources);
  });
  bind.onSourceRefused = (to, errno) => end.refused.push({ to, errno });
  return end;
}

async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function pair(t: { after: (fn: () => void) => void }): [End, End] {
  const a = open();
  const b = open();
  t.after(() => {
    a.bind.close();
    b.bind.close();
  });
  return [a, b];
}

/** `n` datagrams of `size` bytes (equal sizes: a GSO run), numbered in their first byte. */
function batch(n: number, size: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => new Uint8Array(size).fill(i + 1));
}

test('a datagram to our second address is answered from it (plain and GSO sends)', async (t) => {
  const [a, b] = pair(t);
  a.bind.send([new Uint8Array([1])], { family: 4, address: '127.0.0.2', port: b.port });
  await waitFor(() => b.sources.length === 1, 'the first datagram');
  const peer = b.sources[0]!;
  assert.deepEqual(peer.local, { address: '127.0.0.2', ifindex: 1 });
  assert.equal(peer.address, '127.0.0.1');

  // One datagram, then 40 equal ones (one GSO message when the kernel has UDP GSO).
  assert.equal(b.bind.send([new Uint8Array([2])], peer), 1);
  const run = batch(40, 1200);
  assert.equal(b.bind.send(run, peer), 40);
  await waitFor(() => a.datagrams.length === 41, '41 answers');
  for (const s of a.sources) assert.equal(s.address, '127.0.0.2', 'answered from 127.0.0.2');
  a.datagrams.slice(1).forEach((d, i) => assert.deepEqual(d, run[i]));
  assert.equal(b.bind.sourceFallovers, 0);
  assert.deepEqual(b.refused, []);

  // The same remote reaching our other address is a different Endpoint: answers follow it.
  a.bind.send([new Uint8Array([3])], { family: 4, address: '127.0.0.3', port: b.port });
  await waitFor(() => b.sources.length === 2, 'the datagram to 127.0.0.3');
  assert.notEqual(b.sources[1], peer);
  assert.equal(b.sources[1]!.local?.address, '127.0.0.3');
  b.bind.send([new Uint8Array([4])], b.sources[1]!);
  await waitFor(() => a.datagrams.length === 42, 'the answer from 127.0.0.3');
  assert.equal(a.sources[41]!.address, '127.0.0.3');
  // A steady source stays one cached object.
  a.bind.send([new Uint8Array([5])], { family: 4, address: '127.0.0.2', port: b.port });
  await waitFor(() => b.sources.length === 3, 'another datagram to 127.0.0.2');
  assert.equal(b.sources[2], peer);
});

interface RefusedCase {
  name: string;
  /** The loopback address sent to (and the one the datagrams must come from after the fall-over). */
  remote: '127.0.0.1' | '::1';
  local: string;
  ifindex: number;
  errnos: readonly number[];
}

const refusedCases: RefusedCase[] = [
  // The route lookup refuses a source that is not local: ENETUNREACH on 6.18 (with or without an
  // interface); EINVAL is what the kernel's WireGuard checks for.
  {
    name: 'an IPv4 address not on the host (ENETUNREACH or EINVAL)',
    remote: '127.0.0.1',
    local: '192.0.2.77',
    ifindex: 1,
    errnos: [ERRNO.ENETUNREACH, ERRNO.EINVAL],
  },
  {
    name: 'an IPv4 address not on the host, no interface given',
    remote: '127.0.0.1',
    local: '192.0.2.77',
    ifindex: 0,
    errnos: [ERRNO.ENETUNREACH, ERRNO.EINVAL],
  },
  // EINVAL on 6.18; EADDRNOTAVAIL is what IPv6's control-message check answers.
  {
    name: 'an IPv6 address not on the host (EINVAL or EADDRNOTAVAIL)',
    remote: '::1',
    local: '2001:db8::77',
    ifindex: 1,
    errnos: [ERRNO.EADDRNOTAVAIL, ERRNO.EINVAL],
  },
  {
    name: 'an interface that does not exist (ENODEV)',
    remote: '127.0.0.1',
    local: '127.0.0.1',
    ifindex: 999_999,
    errnos: [ERRNO.ENODEV],
  },
];

for (const c of refusedCases) {
  test(`a refused source falls over once: ${c.name}`, async (t) => {
    const [a, b] = pair(t);
    const to: Endpoint = {
      family: c.remote === '::1' ? 6 : 4,
      address: c.remote,
      port: a.port,
      local: { address: c.local, ifindex: c.ifindex },
    };
    // Plain, then a GSO run: each send reports the refusal and still delivers everything.
    assert.equal(b.bind.send([new Uint8Array([9])], to), 1);
    const run = batch(30, 1000);
    assert.equal(b.bind.send(run, to), 30);
    await waitFor(() => a.datagrams.length === 31, '31 datagrams');
    for (const s of a.sources) assert.equal(s.address, c.remote);
    assert.equal(a.datagrams.length, 31, 'nothing sent twice');
    assert.equal(b.bind.sourceFallovers, 2);
    assert.equal(b.refused.length, 2);
    for (const r of b.refused) {
      assert.equal(r.to, to);
      assert.ok(c.errnos.includes(r.errno), `errno ${r.errno}`);
    }
  });
}

test('an endpoint without a local address sends as before and never falls over', async (t) => {
  const [a, b] = pair(t);
  const to: Endpoint = { family: 6, address: '::1', port: a.port };
  assert.equal(b.bind.send(batch(5, 300), to), 5);
  await waitFor(() => a.datagrams.length === 5, '5 datagrams');
  assert.equal(b.bind.sourceFallovers, 0);
  assert.deepEqual(a.sources[0]!.local, { address: '::1', ifindex: 1 });
});
