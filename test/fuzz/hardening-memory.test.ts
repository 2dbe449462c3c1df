// In-memory hardening scenarios on the virtual-clock World (issue 6 §4, §6, §8): replays of
// every recorded datagram later (after a rekey, after expiry), forged far-ahead counters, the
// wall clock stepped backwards against the TAI64N check and how to recover, bounded queues
// and tables under floods, and ephemeral secrets wiped once a handshake is done.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Device } from '../../src/tunnel/device.js';
import { generateKeyPair, mac, type KeyPair } from '../../src/noise/crypto.js';
import { mac1Key } from '../../src/noise/cookie.js';
import { parseEndpoint, parsePrefix } from '../../src/tunnel/ip.js';
import { STAGED_PACKETS_MAX, REJECT_AFTER_TIME_MS } from '../../src/constants.js';
import { ipv4, text, World, TestNode } from '../unit/harness.js';

function pair() {
  const w = new World();
  const a = w.node('a', '192.0.2.1:51820');
  const b = w.node('b', '192.0.2.2:51820');
  const pa = a.peer(b, ['10.0.0.2/32']);
  const pb = b.peer(a, ['10.0.0.1/32']);
  return { w, a, b, pa, pb };
}

const deliveredTexts = (n: TestNode, from = 0) => n.delivered.slice(from).map((p) => text(p));

test('every recorded datagram replayed later is refused and counted, never delivered', () => {
  const { w, a, b } = pair();
  for (let i = 0; i < 20; i++) {
    a.send(ipv4('10.0.0.1', '10.0.0.2', `m${i}`));
    w.pump();
  }
  w.advance(11_000); // keepalives in the log too
  const recorded = w.log.filter((d) => d.to.address === '192.0.2.2').map((d) => ({ ...d }));
  const replayAll = () => {
    const n = b.delivered.length;
    const drops = Object.values(b.device.drops).reduce((s, v) => s + v, 0);
    for (const d of recorded) b.device.receiveDatagram(d.data, d.from, w.now, b.out);
    const counted = Object.values(b.device.drops).reduce((s, v) => s + v, 0) - drops;
    assert.equal(b.delivered.length, n, 'nothing delivered again');
    assert.equal(counted, recorded.length, 'every replay is a counted drop');
  };
  replayAll(); // same session: replay window and TAI64N
  w.advance(125_000); // past REKEY_AFTER_TIME: a new session
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'fresh'));
  w.pump();
  assert.deepEqual(deliveredTexts(b).at(-1), 'fresh');
  replayAll(); // old session kept as previous or gone
  w.advance(REJECT_AFTER_TIME_MS * 3);
  replayAll(); // everything expired and zeroed
  assert.ok(b.drops.includes('replayed_counter'));
  assert.ok(b.drops.includes('replayed_timestamp'));
  assert.ok(b.drops.includes('unknown_index'));
});

test('a forged far-ahead counter neither decrypts nor moves the window: no lockout', () => {
  const { w, a, b } = pair();
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'one'));
  w.pump();
  const data = w.sent(a, 4).find((d) => d.data.length > 32)!;
  for (const ahead of [
    [0x40, 0x42, 0x0f, 0, 0, 0, 0, 0],
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0],
  ]) {
    const forged = Uint8Array.from(data.data);
    forged.set(ahead, 8);
    b.device.receiveDatagram(forged, data.from, w.now, b.out);
  }
  assert.equal(b.device.drops.decrypt_failed + b.device.drops.counter_limit, 2);
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'two'));
  w.pump();
  assert.deepEqual(deliveredTexts(b), ['one', 'two']);
});

test('wall clock stepped backwards: new handshakes are refused until the responder forgets', (t) => {
  const { w, a, b, pb } = pair();
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'before'));
  w.pump();
  // A restarts with its clock one hour behind (same key, fresh state).
  (w as { wallBase: number }).wallBase -= 3_600_000;
  const a2 = new TestNode(w, 'a2', parseEndpoint('192.0.2.1:51820'));
  a2.device.setPrivateKey(a.privateKey);
  w.nodes.splice(w.nodes.indexOf(a), 1, a2);
  const p = a2.device.addPeer(b.publicKey)!;
  a2.device.addAllowedIp(p, parsePrefix('10.0.0.2/32'));
  a2.device.setEndpoint(p, b.endpoint);
  a2.send(ipv4('10.0.0.1', '10.0.0.2', 'after'));
  w.pump();
  w.advance(20_000); // retries, all refused
  assert.ok(b.drops.filter((r) => r === 'replayed_timestamp').length >= 3);
  assert.deepEqual(deliveredTexts(b), ['before']);
  // Recovery: the responder forgets the peer's last timestamp (peer removed and re-added, as
  // `wg set <if> peer <key> remove` then the peer's config again, or a responder restart).
  b.device.removePeer(pb);
  const pb2 = b.device.addPeer(a.publicKey)!;
  b.device.addAllowedIp(pb2, parsePrefix('10.0.0.1/32'));
  w.advance(6_000); // A's next retry gets through
  assert.deepEqual(deliveredTexts(b).at(-1), 'after');
  t.diagnostic(
    'a peer whose clock went back is refused until it passes its old timestamp or the responder re-adds it',
  );
});

test('queues and tables stay bounded: staged packets, indices, unknown-peer floods', () => {
  const { w, a, b, pa } = pair();
  w.filter = () => false; // B unreachable: handshakes never complete
  for (let i = 0; i < 5000; i++) a.send(ipv4('10.0.0.1', '10.0.0.2', `p${i}`));
  assert.equal(pa.staged.length, STAGED_PACKETS_MAX);
  assert.equal(a.device.drops.staged_overflow, 5000 - STAGED_PACKETS_MAX);
  w.advance(130_000); // 18 retries 5 s apart, then give up: staged dropped, nothing left pending
  assert.equal(pa.staged.length, 0);
  assert.ok(a.device.indexCount <= 1);
  // Initiations with a valid mac1 from 2000 unknown keys and sources: no state is kept.
  const key = mac1Key(b.publicKey);
  const before = b.device.indexCount;
  for (let i = 0; i < 2000; i++) {
    const m = new Uint8Array(randomBytes(148));
    m.set([1, 0, 0, 0]);
    m.set(mac(key, m.subarray(0, 116)), 116);
    m.fill(0, 132);
    w.now += 1;
    b.device.receiveDatagram(
      m,
      parseEndpoint(`198.51.${i >> 8}.${i & 255}:${1000 + i}`),
      w.now,
      b.out,
    );
  }
  assert.equal(b.device.indexCount, before);
  assert.equal(b.device.peers.size, 1);
  assert.ok(b.device.drops.cookie_required > 1500, 'under load: cookies, not DH');
});

test('ephemeral private keys are wiped once the handshake is done', () => {
  const made: KeyPair[] = [];
  const env = (wall: () => number) => ({
    randomBytes: (n: number) => new Uint8Array(randomBytes(n)),
    wallClockMs: wall,
    generateKeyPair: () => {
      const kp = generateKeyPair();
      made.push(kp);
      return kp;
    },
  });
  const w = new World();
  const a = w.node('a', '192.0.2.1:51820');
  const b = w.node('b', '192.0.2.2:51820');
  // Swap in devices that record their ephemerals.
  for (const n of [a, b]) {
    const d = new Device(env(() => w.wallBase + w.now));
    d.setPrivateKey(n.privateKey);
    (n as { device: Device }).device = d;
  }
  a.peer(b, ['10.0.0.2/32']);
  b.peer(a, ['10.0.0.1/32']);
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'x'));
  w.pump();
  assert.equal(b.delivered.length, 1);
  assert.equal(made.length, 2, 'one ephemeral per side');
  for (const kp of made)
    assert.ok(
      kp.privateKey.every((x) => x === 0),
      'ephemeral wiped',
    );
});
