/**
 * The lab's pure parts, without root: implementation-pair selection, WireGuard message
 * classification and pcap parsing (used to prove the underlay carries only ciphertext), polling,
 * and name length checks.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePcap, wireguardKind } from '../../src/lab/capture.js';
import { selectedImpls, selectedPairs } from '../../src/lab/daemon.js';
import { Lab, pidAlive } from '../../src/lab/lab.js';
import { waitFor } from '../../src/lab/wait.js';

/** One Ethernet + IPv4 + UDP frame carrying `payload`. */
function udpFrame(payload: Buffer, sport = 51820, dport = 51821): Buffer {
  const eth = Buffer.alloc(14);
  eth.writeUInt16BE(0x0800, 12);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip[9] = 17;
  Buffer.from([192, 168, 241, 1]).copy(ip, 12);
  Buffer.from([192, 168, 241, 2]).copy(ip, 16);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(sport, 0);
  udp.writeUInt16BE(dport, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  return Buffer.concat([eth, ip, udp, payload]);
}

function arpFrame(): Buffer {
  const f = Buffer.alloc(42);
  f.writeUInt16BE(0x0806, 12);
  return f;
}

function pcap(frames: Buffer[]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(262144, 16);
  head.writeUInt32LE(1, 20); // Ethernet
  const recs = frames.map((f) => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(f.length, 8);
    h.writeUInt32LE(f.length, 12);
    return Buffer.concat([h, f]);
  });
  return Buffer.concat([head, ...recs]);
}

function wgMessage(type: number, length: number): Buffer {
  const b = Buffer.alloc(length, 0x5a);
  b.writeUInt32LE(type, 0);
  return b;
}

describe('lab: implementation selection', () => {
  it('parses WG_TS_IMPLS-style lists', () => {
    assert.deepEqual(selectedPairs('go-go, ts-go'), [
      ['go', 'go'],
      ['ts', 'go'],
    ]);
    assert.deepEqual(selectedImpls('go-go'), ['go']);
    assert.deepEqual(selectedImpls('ts-go,go-ts,ts-ts'), ['ts', 'go']);
  });

  it('rejects unknown pairs', () => {
    assert.throws(() => selectedPairs('ts-rust'), /bad pair 'ts-rust'/);
  });
});

describe('lab: WireGuard message classification', () => {
  it('recognises each message type by type and length', () => {
    assert.equal(wireguardKind(wgMessage(1, 148)), 'wg-initiation');
    assert.equal(wireguardKind(wgMessage(2, 92)), 'wg-response');
    assert.equal(wireguardKind(wgMessage(3, 64)), 'wg-cookie');
    assert.equal(
      wireguardKind(wgMessage(4, 32)),
      'wg-data',
      'a keepalive is an empty data message',
    );
    assert.equal(wireguardKind(wgMessage(4, 1452)), 'wg-data');
  });

  it('calls anything else plain UDP', () => {
    assert.equal(wireguardKind(wgMessage(1, 147)), 'udp');
    assert.equal(wireguardKind(wgMessage(4, 31)), 'udp');
    assert.equal(wireguardKind(Buffer.from('HELLO marker')), 'udp');
    assert.equal(wireguardKind(wgMessage(0x0104, 148)), 'udp', 'reserved bytes must be zero');
  });
});

describe('lab: pcap parsing', () => {
  it('counts kinds, reads UDP payload lengths and finds a clear-text marker', () => {
    const marker = 'MARKER-42';
    const file = pcap([
      udpFrame(wgMessage(1, 148)),
      udpFrame(wgMessage(2, 92), 51821, 51820),
      udpFrame(wgMessage(4, 1344)),
      arpFrame(),
      udpFrame(Buffer.from(`plain ${marker}`), 5000, 5001),
    ]);
    const r = parsePcap(file);
    assert.deepEqual(r.counts, {
      'wg-initiation': 1,
      'wg-response': 1,
      'wg-data': 1,
      arp: 1,
      udp: 1,
    });
    assert.equal(r.wireguard, 3);
    assert.equal(r.packets[2]?.payloadLength, 1344);
    assert.equal(r.packets[0]?.src, '192.168.241.1');
    assert.equal(r.packets[1]?.sport, 51821);
    assert.equal(r.contains(marker), true);
    assert.equal(r.contains('NOT-THERE'), false);
  });

  it('survives an empty or truncated file', () => {
    assert.equal(parsePcap(Buffer.alloc(0)).packets.length, 0);
    const cut = pcap([udpFrame(wgMessage(4, 64))]).subarray(0, 24 + 16 + 20);
    assert.equal(parsePcap(cut).packets.length, 1);
  });
});

describe('lab: helpers', () => {
  it('waitFor resolves when the predicate turns true and names what timed out', async () => {
    let n = 0;
    await waitFor(() => ++n >= 3, 1000, 'three calls', 1);
    assert.equal(n, 3);
    await assert.rejects(
      waitFor(() => false, 30, 'the impossible', 5),
      /timed out after 30 ms waiting for the impossible/,
    );
    await assert.rejects(
      waitFor(
        () => {
          throw new Error('boom');
        },
        20,
        'x',
        5,
      ),
      /last error: boom/,
    );
  });

  it('refuses link names over 15 characters', async () => {
    const lab = new Lab('wgti');
    try {
      assert.ok(lab.name('ab').length <= 15);
      assert.throws(() => lab.name('much-too-long-suffix'), /too long/);
    } finally {
      await lab.dispose();
    }
  });
});

describe('lab: spawned processes', () => {
  it('forgets a process that ended with its group, and still stops what its group left behind', async () => {
    const lab = new Lab('wgtu');
    try {
      const before = lab.pendingSteps;
      const done = lab.spawn(null, 'true', []);
      await done.exited;
      await waitFor(() => lab.pendingSteps === before, 2000, 'the exited process forgotten', 5);

      // The shell exits at once, but the sleep it started stays in its process group.
      const parent = lab.spawn(null, 'sh', ['-c', 'sleep 30 & echo $!']);
      await parent.exited;
      const orphan = Number(parent.output().trim());
      assert.ok(orphan > 0 && pidAlive(orphan), `sleep pid ${orphan} alive`);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(lab.pendingSteps, before + 1, 'the group is alive: its cleanup is kept');
      await lab.dispose();
      await waitFor(() => !pidAlive(orphan), 2000, 'the orphan stopped by dispose', 10);
    } finally {
      await lab.dispose();
    }
  });
});
