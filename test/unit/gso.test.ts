/**
 * The native super-packet split (src/tun/native/gso.c) on crafted TSO/USO frames: segment count
 * and sizes, TCP sequence numbers and flags, IPv4 ids and lengths, UDP lengths, and that every
 * IPv4 header checksum and TCP/UDP checksum verifies under an independent JS implementation.
 * Also the partial-checksum completion of plain packets, resuming a split, and malformed frames.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { native } from '../../src/tun/native.js';

interface GsoAddon {
  gsoSplit(
    frame: Uint8Array,
    slab: Uint8Array,
    slotSize: number,
    maxCount: number,
    lengths: Int32Array,
    first?: number,
    hdrSize?: number,
  ): number;
}

let addon: GsoAddon | null = null;
let skip: string | false = false;
try {
  addon = native() as unknown as GsoAddon;
  if (typeof addon.gsoSplit !== 'function') skip = 'native addon built without gsoSplit';
} catch (err) {
  skip = `native addon unavailable: ${(err as Error).message}`;
}

const GSO = { NONE: 0, TCPV4: 1, TCPV6: 4, UDP_L4: 5 } as const;
const SLOT = 2048;

/** Ones'-complement sum of 16-bit big-endian words (odd byte padded), unfolded. */
function sum16(p: Uint8Array, start: number, end: number, acc = 0): number {
  for (let i = start; i + 1 < end; i += 2) acc += (p[i]! << 8) | p[i + 1]!;
  if ((end - start) % 2 === 1) acc += p[end - 1]! << 8;
  return acc;
}
const fold = (acc: number): number => {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
};

function pseudoSum(pkt: Uint8Array, v6: boolean, proto: number, l4Len: number): number {
  const acc = v6 ? sum16(pkt, 8, 40) : sum16(pkt, 12, 20);
  return acc + proto + l4Len;
}

/** True when the L4 checksum of the IP packet `pkt` (L4 header at `l4`) verifies. */
function l4ChecksumOk(pkt: Uint8Array, l4: number, v6: boolean, proto: number): boolean {
  return fold(sum16(pkt, l4, pkt.length, pseudoSum(pkt, v6, proto, pkt.length - l4))) === 0xffff;
}
const ipv4HeaderOk = (pkt: Uint8Array): boolean =>
  fold(sum16(pkt, 0, (pkt[0]! & 0xf) * 4)) === 0xffff;

const be16 = (p: Uint8Array, at: number) => (p[at]! << 8) | p[at + 1]!;
const be32 = (p: Uint8Array, at: number) => be16(p, at) * 0x10000 + be16(p, at + 2);
function put16(p: Uint8Array, at: number, v: number): void {
  p[at] = (v >> 8) & 0xff;
  p[at + 1] = v & 0xff;
}
function put32(p: Uint8Array, at: number, v: number): void {
  put16(p, at, Math.floor(v / 0x10000) & 0xffff);
  put16(p, at + 2, v & 0xffff);
}

interface Frame {
  frame: Uint8Array;
  pkt: Uint8Array;
  ipLen: number;
  l4Len: number;
}

/**
 * A virtio_net_hdr + IP super-packet as the kernel hands it over: L4 checksum field holding the
 * pseudo-header sum (CHECKSUM_PARTIAL), hdr_len deliberately wrong (the kernel's may be too).
 */
function superPacket(opts: {
  v6: boolean;
  udp?: boolean;
  payload: number;
  gsoSize: number;
  tcpOptions?: number;
  flags?: number;
  seq?: number;
  id?: number;
  gsoType?: number;
}): Frame {
  const ipLen = opts.v6 ? 40 : 20;
  const l4Len = opts.udp ? 8 : 20 + (opts.tcpOptions ?? 0);
  const pkt = new Uint8Array(ipLen + l4Len + opts.payload);
  if (opts.v6) {
    pkt[0] = 0x60;
    put16(pkt, 4, pkt.length - 40);
    pkt[6] = opts.udp ? 17 : 6;
    pkt[7] = 64;
    pkt.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 8);
    pkt.set([0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 2], 24);
  } else {
    pkt[0] = 0x45;
    put16(pkt, 2, pkt.length);
    put16(pkt, 4, opts.id ?? 0x1234);
    pkt[6] = 0x40; // DF
    pkt[8] = 64;
    pkt[9] = opts.udp ? 17 : 6;
    pkt.set([10, 9, 8, 7], 12);
    pkt.set([10, 1, 2, 3], 16);
  }
  const l4 = ipLen;
  put16(pkt, l4, 40000);
  put16(pkt, l4 + 2, 5201);
  if (opts.udp) {
    put16(pkt, l4 + 4, pkt.length - l4);
  } else {
    put32(pkt, l4 + 4, opts.seq ?? 1000);
    put32(pkt, l4 + 8, 777);
    pkt[l4 + 12] = (l4Len / 4) << 4;
    pkt[l4 + 13] = opts.flags ?? 0x18; // PSH|ACK
    put16(pkt, l4 + 14, 512);
    for (let i = 20; i < l4Len; i++) pkt[l4 + i] = 1; // NOP options
  }
  for (let i = ipLen + l4Len; i < pkt.length; i++) pkt[i] = (i * 7 + 3) & 0xff;
  const csumAt = l4 + (opts.udp ? 6 : 16);
  put16(pkt, csumAt, fold(pseudoSum(pkt, opts.v6, opts.udp ? 17 : 6, pkt.length - l4)));
  const frame = new Uint8Array(10 + pkt.length);
  const dv = new DataView(frame.buffer);
  frame[0] = 1; // NEEDS_CSUM
  frame[1] = opts.gsoType ?? (opts.udp ? GSO.UDP_L4 : opts.v6 ? GSO.TCPV6 : GSO.TCPV4);
  dv.setUint16(2, pkt.length, true); // hdr_len: the whole packet, as on the forward path
  dv.setUint16(4, opts.gsoSize, true);
  dv.setUint16(6, l4, true);
  dv.setUint16(8, opts.udp ? 6 : 16, true);
  frame.set(pkt, 10);
  return { frame, pkt: frame.subarray(10), ipLen, l4Len };
}

function split(frame: Uint8Array, max = 64, first = 0): Uint8Array[] {
  const slab = new Uint8Array(SLOT * max);
  const lengths = new Int32Array(max);
  const n = addon!.gsoSplit(frame, slab, SLOT, max, lengths, first);
  assert.ok(n >= 0, `gsoSplit refused the frame (${n})`);
  return Array.from({ length: n }, (_, i) => slab.subarray(i * SLOT, i * SLOT + lengths[i]!));
}

/** Checks every segment against the original super-packet. */
function checkSegments(f: Frame, segs: Uint8Array[], o: { v6: boolean; udp?: boolean }, first = 0) {
  const { pkt, ipLen, l4Len } = f;
  const hdr = ipLen + l4Len;
  const mss = new DataView(f.frame.buffer).getUint16(4, true);
  const total = Math.ceil((pkt.length - hdr) / mss);
  for (let k = 0; k < segs.length; k++) {
    const i = first + k;
    const s = segs[k]!;
    const dataLen = Math.min(mss, pkt.length - hdr - i * mss);
    assert.equal(s.length, hdr + dataLen, `segment ${i} length`);
    assert.deepEqual(s.subarray(hdr), pkt.subarray(hdr + i * mss, hdr + i * mss + dataLen));
    if (o.v6) {
      assert.equal(be16(s, 4), s.length - 40, `segment ${i} IPv6 payload length`);
    } else {
      assert.equal(be16(s, 2), s.length, `segment ${i} IPv4 total length`);
      assert.equal(be16(s, 4), (be16(pkt, 4) + i) & 0xffff, `segment ${i} IPv4 id`);
      assert.ok(ipv4HeaderOk(s), `segment ${i} IPv4 header checksum`);
    }
    if (o.udp) {
      assert.equal(be16(s, ipLen + 4), s.length - ipLen, `segment ${i} UDP length`);
      assert.ok(l4ChecksumOk(s, ipLen, o.v6, 17), `segment ${i} UDP checksum`);
    } else {
      assert.equal(be32(s, ipLen + 4), (be32(pkt, ipLen + 4) + i * mss) % 2 ** 32, `seq ${i}`);
      const flags = s[ipLen + 13]!;
      const last = i === total - 1;
      assert.equal(flags & 0x09, last ? pkt[ipLen + 13]! & 0x09 : 0, `segment ${i} FIN/PSH`);
      assert.equal(flags & 0x10, 0x10, `segment ${i} keeps ACK`);
      assert.deepEqual(s.subarray(ipLen + 20, hdr), pkt.subarray(ipLen + 20, hdr), 'options');
      assert.ok(l4ChecksumOk(s, ipLen, o.v6, 6), `segment ${i} TCP checksum`);
    }
  }
}

test('TCPv4 super-packet: segments, ids, seqs, flags and checksums', { skip }, () => {
  const f = superPacket({ v6: false, payload: 65_000, gsoSize: 1380, flags: 0x19, id: 0xfffe });
  const segs = split(f.frame);
  assert.equal(segs.length, Math.ceil(65_000 / 1380)); // 48, the last one short
  assert.equal(segs.at(-1)!.length, 40 + (65_000 % 1380));
  checkSegments(f, segs, { v6: false });
  assert.equal(be16(segs[2]!, 4), 0); // the id wraps
});

test('TCPv4 with TCP options, odd last segment, sequence number wrap', { skip }, () => {
  const f = superPacket({
    v6: false,
    payload: 3 * 1368 + 101,
    gsoSize: 1368,
    tcpOptions: 12,
    seq: 2 ** 32 - 2000,
  });
  const segs = split(f.frame);
  assert.equal(segs.length, 4);
  checkSegments(f, segs, { v6: false });
});

test('TCPv6 super-packet', { skip }, () => {
  const f = superPacket({ v6: true, payload: 40_001, gsoSize: 1360, flags: 0x18 });
  const segs = split(f.frame);
  assert.equal(segs.length, Math.ceil(40_001 / 1360));
  checkSegments(f, segs, { v6: true });
});

test('UDP (USO) super-packets over IPv4 and IPv6', { skip }, () => {
  for (const v6 of [false, true]) {
    const f = superPacket({ v6, udp: true, payload: 10 * 1200 + 7, gsoSize: 1200 });
    const segs = split(f.frame);
    assert.equal(segs.length, 11);
    checkSegments(f, segs, { v6, udp: true });
  }
});

test('a split resumes at a given segment when the slots run out', { skip }, () => {
  const f = superPacket({ v6: false, payload: 20 * 1000, gsoSize: 1000, flags: 0x11 });
  const a = split(f.frame, 7);
  assert.equal(a.length, 7);
  checkSegments(f, a, { v6: false });
  const b = split(f.frame, 64, 7);
  assert.equal(b.length, 13);
  checkSegments(f, b, { v6: false }, 7);
  assert.equal(b.at(-1)![20 + 13]! & 0x01, 0x01, 'FIN stays on the very last segment');
  assert.equal(split(f.frame, 64, 20).length, 0);
});

test('a plain packet with NEEDS_CSUM gets its checksum completed', { skip }, () => {
  for (const udp of [false, true]) {
    const f = superPacket({ v6: false, udp, payload: 333, gsoSize: 0, gsoType: GSO.NONE });
    assert.ok(!l4ChecksumOk(f.pkt, 20, false, udp ? 17 : 6), 'partial checksum before');
    const segs = split(f.frame);
    assert.equal(segs.length, 1);
    assert.equal(segs[0]!.length, f.pkt.length);
    assert.ok(l4ChecksumOk(segs[0]!, 20, false, udp ? 17 : 6), 'checksum completed');
  }
  // Without NEEDS_CSUM the packet passes untouched.
  const plain = superPacket({ v6: true, payload: 50, gsoSize: 0, gsoType: GSO.NONE });
  plain.frame[0] = 0;
  assert.deepEqual(split(plain.frame)[0], plain.pkt);
});

test('malformed frames are refused', { skip }, () => {
  const slab = new Uint8Array(SLOT * 64);
  const lengths = new Int32Array(64);
  const refuse = (frame: Uint8Array, what: string) =>
    assert.equal(addon!.gsoSplit(frame, slab, SLOT, 64, lengths), -1, what);
  const base = () => superPacket({ v6: false, payload: 5000, gsoSize: 1000 }).frame;
  let f = base();
  f[4] = f[5] = 0;
  refuse(f, 'gso_size 0');
  f = base();
  f[1] = GSO.TCPV6;
  refuse(f, 'TCPv6 type on an IPv4 packet');
  f = base();
  f[1] = 3; // legacy UFO
  refuse(f, 'unsupported GSO type');
  f = base();
  f[6] = 200;
  refuse(f, 'csum_start past the headers');
  refuse(base().subarray(0, 10 + 30), 'truncated TCP header');
  f = base();
  new DataView(f.buffer).setUint16(4, 4000, true);
  assert.equal(addon!.gsoSplit(f, slab, 1024, 64, lengths), -1, 'segment larger than a slot');
  refuse(new Uint8Array(5), 'shorter than the header');
});

// TUN write coalescing (gso.c wgts_tcp_coalesce), the inverse of the split above: a run of one
// TCP flow becomes one super-packet that the kernel (or our own split) turns back into exactly
// the same packets; anything Linux's GRO would not merge, or a bad checksum, stops the run.
type CoalesceFn = (
  slab: Uint8Array,
  offsets: Int32Array,
  lengths: Int32Array,
  first: number,
  count: number,
  out: Uint8Array,
  vnet: Uint8Array,
  outLen: Int32Array,
) => number;
interface GroAddon {
  tcpCoalesce: CoalesceFn;
  udpCoalesce: CoalesceFn;
}
const groSkip =
  skip || (typeof (addon as unknown as GroAddon).tcpCoalesce !== 'function' && 'no tcpCoalesce');

function coalesce(
  pkts: Uint8Array[],
  first = 0,
  proto: 'tcp' | 'udp' = 'tcp',
): { n: number; frame: Uint8Array } {
  const gro = addon as unknown as GroAddon;
  const slab = new Uint8Array(pkts.length * SLOT);
  const offsets = new Int32Array(pkts.length);
  const lengths = new Int32Array(pkts.length);
  pkts.forEach((p, i) => {
    slab.set(p, i * SLOT);
    offsets[i] = i * SLOT;
    lengths[i] = p.length;
  });
  const out = new Uint8Array(65536);
  const vnet = new Uint8Array(10);
  const outLen = new Int32Array(1);
  const fn = proto === 'tcp' ? gro.tcpCoalesce : gro.udpCoalesce;
  const n = fn(slab, offsets, lengths, first, pkts.length, out, vnet, outLen);
  const frame = new Uint8Array(10 + outLen[0]!);
  frame.set(vnet);
  frame.set(out.subarray(0, outLen[0]), 10);
  return { n, frame };
}

/** Recomputes the TCP checksum of an IPv4 packet edited by a test (so only the edit differs). */
function fixTcp(s: Uint8Array, ipLen = 20): Uint8Array {
  put16(s, ipLen + 16, 0);
  put16(
    s,
    ipLen + 16,
    ~fold(sum16(s, ipLen, s.length, pseudoSum(s, false, 6, s.length - ipLen))) & 0xffff,
  );
  assert.ok(l4ChecksumOk(s, ipLen, false, 6));
  return s;
}

/** A copy of a split segment with its TCP flags (and nothing else) changed. */
function withFlags(seg: Uint8Array, ipLen: number, flags: number): Uint8Array {
  const s = Uint8Array.from(seg);
  s[ipLen + 13] = flags;
  return fixTcp(s, ipLen);
}

/** A copy of a split segment with one byte changed, checksum fixed. */
function edited(seg: Uint8Array, at: number, f: (b: number) => number): Uint8Array {
  const s = Uint8Array.from(seg);
  s[at] = f(s[at]!);
  return fixTcp(s);
}

test('coalesce then split gives back the same packets, byte for byte', { skip: groSkip }, () => {
  for (const v6 of [false, true]) {
    for (const tcpOptions of [0, 12]) {
      const segs = split(
        superPacket({ v6, payload: 1400 * 20 + 333, gsoSize: 1400, tcpOptions }).frame,
      );
      assert.equal(segs.length, 21);
      const { n, frame } = coalesce(segs);
      assert.equal(n, 21, 'the whole run');
      const dv = new DataView(frame.buffer);
      assert.equal(frame[0], 1, 'NEEDS_CSUM');
      assert.equal(frame[1], v6 ? GSO.TCPV6 : GSO.TCPV4);
      assert.equal(dv.getUint16(4, true), 1400, 'gso_size');
      assert.equal(dv.getUint16(6, true), v6 ? 40 : 20, 'csum_start');
      assert.equal(dv.getUint16(8, true), 16, 'csum_offset');
      const pkt = frame.subarray(10);
      if (!v6) assert.ok(ipv4HeaderOk(pkt), 'IPv4 header checksum');
      assert.equal(pkt[(v6 ? 40 : 20) + 13], 0x18, 'PSH of the last segment kept');
      assert.deepEqual(split(frame), segs, `v6=${v6} options=${tcpOptions}`);
    }
  }
});

test('runs stop where Linux GRO would not merge', { skip: groSkip }, () => {
  const f = superPacket({ v6: false, payload: 1000 * 8, gsoSize: 1000 });
  const segs = split(f.frame); // 8 segments, ACK only but the last (PSH|ACK)
  const ip = 20;
  const cut = (pkts: Uint8Array[]) => coalesce(pkts).n;
  assert.equal(cut(segs.slice(0, 1)), 1, 'nothing to merge with');
  assert.equal(cut([segs[0]!, segs[2]!, segs[3]!]), 1, 'a gap in the sequence');
  assert.equal(cut([segs[0]!, segs[1]!, segs[0]!]), 2, 'a retransmission ends the run');
  const psh = [...segs];
  psh[2] = withFlags(segs[2]!, ip, 0x18);
  assert.equal(cut(psh), 3, 'PSH ends the run, included');
  assert.equal(cut([withFlags(segs[0]!, ip, 0x18), segs[1]!]), 1, 'nothing after a PSH');
  for (const flags of [0x02, 0x12, 0x11, 0x14, 0x30, 0x50, 0x90]) {
    assert.equal(cut([withFlags(segs[0]!, ip, flags), segs[1]!]), 1, `flags ${flags}`);
    assert.equal(cut([segs[0]!, withFlags(segs[1]!, ip, flags)]), 1, `then flags ${flags}`);
  }
  assert.equal(cut([segs[0]!, edited(segs[1]!, ip + 15, (b) => b ^ 1)]), 1, 'a window change');
  assert.equal(cut([segs[0]!, edited(segs[1]!, ip + 11, (b) => b ^ 1)]), 1, 'a new ack');
  assert.equal(cut([segs[0]!, edited(segs[1]!, ip + 1, (b) => b ^ 1)]), 1, 'another flow');
  assert.equal(cut([segs[0]!, edited(segs[1]!, 8, () => 1)]), 1, 'another TTL');
  assert.equal(cut([segs[0]!, edited(segs[1]!, 100, (b) => b ^ 1), segs[2]!]), 3, 'payload edit');
  // A short segment can only be the last of a run.
  const short = split(superPacket({ v6: false, payload: 1000 * 2 + 10, gsoSize: 1000 }).frame);
  assert.equal(short.length, 3);
  assert.equal(cut(short), 3, 'the short one closes the run');
  const tail = split(superPacket({ v6: false, payload: 500, gsoSize: 1000 }).frame)[0]!;
  assert.equal(cut([withFlags(tail, ip, 0x10), segs[1]!]), 1, 'a larger segment after a short one');
  const bad = Uint8Array.from(segs[1]!);
  bad[bad.length - 1] ^= 0x40;
  assert.equal(cut([segs[0]!, bad, segs[2]!]), 1, 'a segment whose TCP checksum fails');
  assert.equal(cut([bad, segs[2]!]), 1, 'nor as the first');
  const udp = split(superPacket({ v6: false, udp: true, payload: 3000, gsoSize: 1000 }).frame);
  assert.equal(cut(udp), 1, 'UDP is not coalesced');
});

// UDP (gso.c wgts_udp_coalesce): a run of one UDP flow becomes one GSO_UDP_L4 super-packet, which
// the kernel splits again for a socket without UDP_GRO, as our own split does here.
const udpGroSkip =
  skip || (typeof (addon as unknown as GroAddon).udpCoalesce !== 'function' && 'no udpCoalesce');
const udpCut = (pkts: Uint8Array[]) => coalesce(pkts, 0, 'udp').n;

/** A copy of a UDP datagram with one byte changed and its UDP checksum (and IPv4's) redone. */
function editedUdp(seg: Uint8Array, at: number, f: (b: number) => number, v6 = false): Uint8Array {
  const s = Uint8Array.from(seg);
  s[at] = f(s[at]!);
  const ipLen = v6 ? 40 : 20;
  if (!v6) {
    put16(s, 10, 0);
    put16(s, 10, ~fold(sum16(s, 0, 20)) & 0xffff);
  }
  put16(s, ipLen + 6, 0);
  const c = ~fold(sum16(s, ipLen, s.length, pseudoSum(s, v6, 17, s.length - ipLen))) & 0xffff;
  put16(s, ipLen + 6, c === 0 ? 0xffff : c);
  assert.ok(l4ChecksumOk(s, ipLen, v6, 17));
  return s;
}

test(
  'UDP: coalesce then split gives back the same datagrams, byte for byte',
  { skip: udpGroSkip },
  () => {
    for (const v6 of [false, true]) {
      // iperf3's datagrams at inner MTU 1420: 1392 bytes of payload; a short one closes the run.
      const segs = split(
        superPacket({ v6, udp: true, payload: 1392 * 20 + 99, gsoSize: 1392 }).frame,
      );
      assert.equal(segs.length, 21);
      const { n, frame } = coalesce(segs, 0, 'udp');
      assert.equal(n, 21, 'the whole run');
      const dv = new DataView(frame.buffer);
      assert.equal(frame[0], 1, 'NEEDS_CSUM');
      assert.equal(frame[1], GSO.UDP_L4);
      assert.equal(dv.getUint16(2, true), (v6 ? 40 : 20) + 8, 'hdr_len');
      assert.equal(dv.getUint16(4, true), 1392, 'gso_size');
      assert.equal(dv.getUint16(6, true), v6 ? 40 : 20, 'csum_start');
      assert.equal(dv.getUint16(8, true), 6, 'csum_offset');
      const pkt = frame.subarray(10);
      if (!v6) assert.ok(ipv4HeaderOk(pkt), 'IPv4 header checksum');
      assert.equal(be16(pkt, (v6 ? 40 : 20) + 4), pkt.length - (v6 ? 40 : 20), 'UDP length');
      assert.deepEqual(split(frame), segs, `v6=${v6}`);
      // Starting inside a batch: the run begins at `first`.
      assert.equal(coalesce(segs, 5, 'udp').n, 16);
    }
  },
);

test(
  'UDP: runs stop at another flow, IP field, size, checksum or limit',
  { skip: udpGroSkip },
  () => {
    const segs = split(
      superPacket({ v6: false, udp: true, payload: 1000 * 8, gsoSize: 1000 }).frame,
    );
    assert.equal(udpCut(segs), 8);
    assert.equal(udpCut(segs.slice(0, 1)), 1, 'nothing to merge with');
    assert.equal(udpCut([segs[0]!, editedUdp(segs[1]!, 21, (b) => b ^ 1)]), 1, 'another port');
    assert.equal(udpCut([segs[0]!, editedUdp(segs[1]!, 19, (b) => b ^ 1)]), 1, 'another address');
    assert.equal(udpCut([segs[0]!, editedUdp(segs[1]!, 8, () => 1)]), 1, 'another TTL');
    assert.equal(udpCut([segs[0]!, editedUdp(segs[1]!, 1, () => 0x10)]), 1, 'another ToS');
    assert.equal(udpCut([segs[0]!, editedUdp(segs[1]!, 6, () => 0)]), 1, 'DF cleared');
    assert.equal(udpCut([segs[0]!, editedUdp(segs[1]!, 6, () => 0x60)]), 1, 'a fragment (MF)');
    // The IPv4 id is not compared: a split renumbers the datagrams from the first one's id.
    assert.equal(udpCut([segs[0]!, editedUdp(segs[1]!, 5, (b) => b ^ 0x55), segs[2]!]), 3, 'ids');
    assert.equal(
      udpCut([segs[0]!, editedUdp(segs[1]!, 100, (b) => b ^ 1), segs[2]!]),
      3,
      'payload',
    );
    const bad = Uint8Array.from(segs[1]!);
    bad[bad.length - 1] ^= 0x40;
    assert.equal(udpCut([segs[0]!, bad, segs[2]!]), 1, 'a datagram whose checksum fails');
    assert.equal(udpCut([bad, segs[2]!]), 1, 'nor as the first');
    const noCsum = Uint8Array.from(segs[0]!);
    put16(noCsum, 26, 0);
    assert.equal(udpCut([noCsum, segs[1]!]), 1, 'an IPv4 datagram without a checksum');
    assert.equal(udpCut([segs[0]!, noCsum]), 1, 'nor after one');
    const short = split(
      superPacket({ v6: false, udp: true, payload: 500, gsoSize: 1000 }).frame,
    )[0]!;
    assert.equal(udpCut([segs[0]!, short, segs[1]!]), 2, 'a short datagram closes the run');
    assert.equal(udpCut([short, segs[1]!]), 1, 'a larger datagram after a short one');
    const tcp = split(superPacket({ v6: false, payload: 3000, gsoSize: 1000 }).frame);
    assert.equal(udpCut([segs[0]!, tcp[0]!]), 1, 'TCP ends a UDP run');
    assert.equal(udpCut(tcp), 1, 'TCP is not UDP-coalesced');
    assert.equal(coalesce(segs, 0, 'tcp').n, 1, 'nor UDP TCP-coalesced');
    // At most 64 datagrams, and at most 65535 bytes of IP packet.
    const small = split(
      superPacket({ v6: false, udp: true, payload: 100 * 70, gsoSize: 100 }).frame,
      70,
    );
    assert.equal(udpCut(small), 64, 'the kernel splits at most 64 segments');
    const big = split(
      superPacket({ v6: true, udp: true, payload: 1392 * 60, gsoSize: 1392 }).frame,
    );
    const { n, frame } = coalesce(big, 0, 'udp');
    assert.equal(n, Math.floor((65535 - 48) / 1392), 'the IP length caps the run');
    assert.ok(frame.length - 10 <= 65535);
  },
);
