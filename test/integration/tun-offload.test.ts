/**
 * TUN offloads against the kernel: two offload TUNs, each in a namespace of this test, joined by
 * this process (what one reads, the other writes). A TCP transfer (IPv4, then IPv6) from one
 * namespace to the other makes the sender's kernel hand over TSO super-packets; the relay must
 * see only packets ≤ MTU with valid IPv4 and TCP checksums, and the bytes must arrive intact
 * (the receiving kernel checks every checksum again). Also: an inherited IFF_VNET_HDR fd.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { LinuxTun, TUN_F } from '../../src/tun/linux.js';
import { native } from '../../src/tun/native.js';
import { run } from '../../src/control/exec.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && 'needs root: creates TUN devices and network namespaces';
const NSA = `wgto-${process.pid}-a`;
const NSB = `wgto-${process.pid}-b`;
const TAG = `wgto${process.pid % 10000}`;
const FILE = `/tmp/wgto-${process.pid}.bin`;
const MTU = 1420;

const ip = (...args: string[]) => run('ip', args);

/** Ones'-complement sum of big-endian 16-bit words over [start, end), unfolded. */
function sum16(p: Uint8Array, start: number, end: number, acc = 0): number {
  for (let i = start; i + 1 < end; i += 2) acc += (p[i]! << 8) | p[i + 1]!;
  if ((end - start) % 2 === 1) acc += p[end - 1]! << 8;
  return acc;
}
function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}

/** Why `p` is not a well-formed IP packet with valid checksums (TCP/UDP/IPv4), or null. */
function packetProblem(p: Uint8Array): string | null {
  if (p.length > MTU) return `packet of ${p.length} bytes > MTU`;
  const v = p[0]! >> 4;
  let l4: number;
  let proto: number;
  let pseudo: number;
  if (v === 4) {
    l4 = (p[0]! & 0xf) * 4;
    if (((p[2]! << 8) | p[3]!) !== p.length) return 'IPv4 total length';
    if (fold(sum16(p, 0, l4)) !== 0xffff) return 'IPv4 header checksum';
    proto = p[9]!;
    pseudo = sum16(p, 12, 20);
  } else if (v === 6) {
    l4 = 40;
    if (((p[4]! << 8) | p[5]!) !== p.length - 40) return 'IPv6 payload length';
    proto = p[6]!;
    pseudo = sum16(p, 8, 40);
  } else {
    return `IP version ${v}`;
  }
  if (proto !== 6 && proto !== 17) return null;
  if (fold(sum16(p, l4, p.length, pseudo + proto + (p.length - l4))) !== 0xffff) {
    return `${proto === 6 ? 'TCP' : 'UDP'} checksum`;
  }
  return null;
}

/** An offload TUN moved into `ns` with `addrs`, up. */
async function tunInNs(name: string, ns: string, addrs: string[]): Promise<LinuxTun> {
  const tun = LinuxTun.create(name, { offload: true, mtu: MTU });
  try {
    await ip('link', 'set', name, 'netns', ns);
    for (const a of addrs) {
      await ip('-n', ns, 'addr', 'add', a, 'dev', name, ...(a.includes(':') ? ['nodad'] : []));
    }
    await ip('-n', ns, 'link', 'set', name, 'up');
  } catch (err) {
    tun.close();
    throw err;
  }
  return tun;
}

const opened: LinuxTun[] = [];
before(async () => {
  if (!isRoot) return;
  for (const ns of [NSA, NSB]) {
    await ip('netns', 'add', ns);
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
  }
});
after(async () => {
  for (const t of opened) t.close();
  rmSync(FILE, { force: true });
  if (!isRoot) return;
  for (const ns of [NSA, NSB]) await ip('netns', 'del', ns).catch(() => {});
  for (const s of ['a', 'b', 'c', 'd']) await ip('link', 'del', TAG + s).catch(() => {});
});

/** Runs `sh -c script` in `ns`; resolves with stdout, rejects on a non-zero exit. */
function shIn(ns: string, script: string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, 'sh', '-c', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${script}: exit ${code}: ${err}`));
    });
  });
}

async function listening(ns: string, port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const { stdout } = await run('ss', ['-Hltn', `sport = :${port}`], { netns: ns });
    if (stdout.trim() !== '') return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`nothing listens on ${port} in ${ns}`);
}

test(
  'TCP through offload TUNs: super-packets are read and split into valid packets ≤ MTU',
  { skip, timeout: 120_000 },
  async (t) => {
    const a = await tunInNs(TAG + 'a', NSA, ['10.81.0.1/24', 'fd81::1/64']);
    opened.push(a);
    const b = await tunInNs(TAG + 'b', NSB, ['10.81.0.2/24', 'fd81::2/64']);
    opened.push(b);
    assert.equal(a.stats().vnetHdr, 10);
    assert.equal(a.stats().offload & (TUN_F.CSUM | TUN_F.TSO4 | TUN_F.TSO6), 0x07);

    const problems: string[] = [];
    let relayed = 0;
    let fromA = 0;
    let biggest = 0;
    const relay = (to: LinuxTun) => (packets: readonly Uint8Array[]) => {
      if (to === b) fromA += packets.length;
      for (const p of packets) {
        biggest = Math.max(biggest, p.length);
        const problem = packetProblem(p);
        if (problem && problems.length < 10) problems.push(problem);
      }
      relayed += packets.length;
      to.write(packets);
    };
    a.start(relay(b), () => {});
    b.start(relay(a), () => {});

    const data = randomBytes(3 << 20);
    writeFileSync(FILE, data);
    const digest = createHash('sha256').update(data).digest('hex');
    for (const [port, dst] of [
      [5001, '10.81.0.2'],
      [5002, 'fd81::2'],
    ] as const) {
      const before = a.stats();
      const server = shIn(NSB, `ncat -l ${port} --recv-only | sha256sum`);
      await listening(NSB, port);
      await shIn(NSA, `ncat --send-only ${dst} ${port} < ${FILE}`);
      const got = (await server).split(' ')[0];
      assert.equal(got, digest, `the ${dst} transfer arrived intact`);
      const after = a.stats();
      assert.ok(after.gsoFrames > before.gsoFrames, `super-packets were read (${dst})`);
      assert.ok(
        after.gsoSegments - before.gsoSegments >= 2 * (after.gsoFrames - before.gsoFrames),
        'each super-packet became several packets',
      );
    }
    assert.deepEqual(problems, [], 'every relayed packet is well-formed');
    assert.ok(biggest <= MTU && biggest >= MTU - 40, `full-size segments (${biggest})`);
    const s = a.stats();
    t.diagnostic(`relayed ${relayed} packets; sender stats ${JSON.stringify(s)}`);
    assert.equal(s.malformed, 0);
    // Nothing is lost between the split and onPackets, also when a super-packet does not fit in
    // the batch's remaining slots and its rest is parked for the next call.
    assert.equal(fromA, s.frames - s.gsoFrames + s.gsoSegments, 'every segment delivered once');
    assert.ok(relayed > (6 << 20) / MTU, `relayed ${relayed} packets`);
    assert.ok(s.frames < relayed, `fewer reads than packets (${s.frames} frames)`);
  },
);

const hasPython = async (): Promise<boolean> =>
  run('python3', ['-c', 'pass']).then(
    () => true,
    () => false,
  );

test('UDP GSO (USO) from a socket arrives as a split super-packet', { skip }, async (t) => {
  if (!(await hasPython())) {
    t.skip('python3 not installed (needed to set UDP_SEGMENT on a socket)');
    return;
  }
  const tun = await tunInNs(TAG + 'd', NSA, ['10.83.0.1/24']);
  opened.push(tun);
  if ((tun.stats().offload & TUN_F.USO4) === 0) {
    t.skip('kernel without USO (needs Linux 6.2)');
    return;
  }
  const udp: Uint8Array[] = [];
  tun.start(
    (packets) => {
      for (const p of packets) if (p[9] === 17) udp.push(Uint8Array.from(p));
    },
    () => {},
  );
  // One sendto of 12 032 bytes with UDP_SEGMENT (103) = 1200: one frame, 11 datagrams.
  const script =
    'import socket\n' +
    's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n' +
    's.setsockopt(socket.SOL_UDP, 103, 1200)\n' +
    "s.sendto(bytes(range(256)) * 47, ('10.83.0.2', 5003))\n";
  const before = tun.stats();
  await run('python3', ['-c', script], { netns: NSA });
  for (let i = 0; i < 200 && udp.length < 11; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(udp.length, 11, 'eleven datagrams');
  for (const p of udp) assert.equal(packetProblem(p), null);
  assert.deepEqual(
    udp.map((p) => p.length),
    [...Array<number>(10).fill(28 + 1200), 28 + 32],
  );
  const payload = Buffer.concat(udp.map((p) => p.subarray(28)));
  assert.deepEqual(
    payload,
    Buffer.from(Array.from({ length: 47 }, () => [...Array(256).keys()]).flat()),
  );
  const after = tun.stats();
  assert.equal(after.gsoFrames - before.gsoFrames, 1, 'one super-packet read');
  assert.equal(after.gsoSegments - before.gsoSegments, 11);
});

test('an inherited fd with IFF_VNET_HDR is read and written with headers', { skip }, async () => {
  const addon = native() as unknown as {
    tunOpen(n: string, mq: boolean, vnet: boolean): { fd: number; offload: number };
  };
  const name = TAG + 'c';
  const opened0 = addon.tunOpen(name, false, true);
  assert.ok(opened0.offload >= 0);
  const tun = LinuxTun.fromFd(opened0.fd, { mtu: MTU });
  opened.push(tun);
  assert.equal(tun.stats().vnetHdr, 10);
  assert.equal(tun.stats().offload, -1, 'offloads of an inherited fd are unknown');
  await ip('link', 'set', name, 'netns', NSA);
  await ip('-n', NSA, 'addr', 'add', '10.82.0.1/24', 'dev', name);
  await ip('-n', NSA, 'link', 'set', name, 'up');
  let replies = 0;
  tun.start(
    (packets) => {
      const out: Uint8Array[] = [];
      for (const p of packets) {
        // ICMP echo request to 10.82.0.2: answer it (swap addresses, type 0, fix checksum).
        if (p[0] !== 0x45 || p[9] !== 1 || p[20] !== 8) continue;
        const r = Uint8Array.from(p);
        r.set(p.subarray(16, 20), 12);
        r.set(p.subarray(12, 16), 16);
        r[20] = 0;
        r[22] = r[23] = 0;
        const c = ~fold(sum16(r, 20, r.length)) & 0xffff;
        r[22] = c >> 8;
        r[23] = c & 0xff;
        out.push(r);
      }
      if (out.length > 0) replies += tun.write(out);
    },
    () => {},
  );
  const { stdout } = await run('ping', ['-c', '2', '-i', '0.2', '-W', '1', '10.82.0.2'], {
    netns: NSA,
  });
  assert.match(stdout, /2 received/);
  assert.doesNotMatch(stdout, /BAD CHECKSUM|DUP/);
  assert.equal(replies, 2);
  assert.ok(tun.stats().frames >= 2);
});
