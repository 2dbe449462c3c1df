/**
 * LinuxTun against the kernel: a TUN created here and moved into a namespace of this test keeps
 * working through its fd; the test answers pings from the namespace, reads batches, follows the
 * MTU (also 40 000-byte packets), sees `ip link del` as onClose, and adopts an inherited fd.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { LinuxTun } from '../../src/tun/linux.js';
import { native } from '../../src/tun/native.js';
import { WgError } from '../../src/errors.js';
import { run } from '../../src/control/exec.js';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && 'needs root: creates TUN devices and network namespaces';
const NS = `wgtn-${process.pid}-a`;
const TAG = `wgtn${process.pid % 10000}`;
const repoRoot = new URL('../../../', import.meta.url);

const ip = (...args: string[]) => run('ip', args);
const inNs = (file: string, ...args: string[]) => run(file, args, { netns: NS, timeoutMs: 20_000 });

/** Internet checksum over bytes [start, end). */
function checksum(p: Uint8Array, start: number, end: number): number {
  let sum = 0;
  for (let i = start; i + 1 < end; i += 2) sum += (p[i]! << 8) | p[i + 1]!;
  if ((end - start) % 2 === 1) sum += p[end - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function setChecksum(p: Uint8Array, at: number, start: number, end: number): void {
  p[at] = 0;
  p[at + 1] = 0;
  const c = checksum(p, start, end);
  p[at] = c >> 8;
  p[at + 1] = c & 0xff;
}

const isIcmpEcho = (p: Uint8Array, type: number) =>
  p.length >= 28 && p[0]! >> 4 === 4 && p[9] === 1 && p[(p[0]! & 0xf) * 4] === type;

/** The echo reply to an IPv4 echo request, or null for any other packet. */
function echoReply(req: Uint8Array): Uint8Array | null {
  if (!isIcmpEcho(req, 8)) return null;
  const p = Uint8Array.from(req);
  const ihl = (p[0]! & 0xf) * 4;
  p.set(req.subarray(16, 20), 12);
  p.set(req.subarray(12, 16), 16);
  p[ihl] = 0;
  setChecksum(p, ihl + 2, ihl, p.length);
  return p;
}

/** An IPv4 echo request from `src` to `dst` (dotted quads) with `size` payload bytes. */
function echoRequest(src: string, dst: string, seq: number, size: number): Uint8Array {
  const p = new Uint8Array(28 + size);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[8] = 64;
  p[9] = 1;
  p.set(src.split('.').map(Number), 12);
  p.set(dst.split('.').map(Number), 16);
  setChecksum(p, 10, 0, 20);
  p[20] = 8;
  p[24] = 0x12; // identifier
  p[26] = seq >> 8;
  p[27] = seq & 0xff;
  p.fill(seq & 0xff, 28);
  setChecksum(p, 22, 20, p.length);
  return p;
}

async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Creates a TUN in the root namespace, moves it into NS with `addr`, and brings it up. */
async function tunInNs(name: string, addr: string): Promise<LinuxTun> {
  const tun = LinuxTun.create(name);
  try {
    await ip('link', 'set', name, 'netns', NS);
    await ip('-n', NS, 'addr', 'add', addr, 'dev', name);
    await ip('-n', NS, 'link', 'set', name, 'up');
  } catch (err) {
    tun.close();
    throw err;
  }
  return tun;
}

const opened: LinuxTun[] = [];
before(async () => {
  if (!isRoot) return;
  await ip('netns', 'add', NS);
  await ip('-n', NS, 'link', 'set', 'lo', 'up');
  // No IPv6 chatter (router solicitations, MLD) on the test links.
  await inNs(
    'sysctl',
    '-qw',
    'net.ipv6.conf.all.disable_ipv6=1',
    'net.ipv6.conf.default.disable_ipv6=1',
  );
});
after(async () => {
  for (const t of opened) t.close();
  if (!isRoot) return;
  await ip('netns', 'del', NS).catch(() => {});
  for (const suffix of ['', 'b', 'c', 'd', 'e']) {
    await ip('link', 'del', TAG + suffix).catch(() => {});
  }
});

test(
  'create: kernel name, MTU 1420, mtu() follows `ip link set mtu` and setMtu',
  { skip },
  async () => {
    const tun = LinuxTun.create(TAG + 'd');
    opened.push(tun);
    assert.equal(tun.name, TAG + 'd');
    assert.equal(tun.mtu(), 1420);
    await ip('link', 'set', tun.name, 'mtu', '9000');
    assert.equal(tun.mtu(), 9000);
    tun.setMtu(1500);
    const { stdout } = await ip('-o', 'link', 'show', tun.name);
    assert.match(stdout, /mtu 1500 /);
    assert.equal(native().ifIndex(tun.name) > 0, true);
    // A second open of the same single-queue name is refused as in use.
    assert.throws(
      () => LinuxTun.create(tun.name),
      (e: unknown) => e instanceof WgError && e.code === 'ERR_IN_USE',
    );
    tun.close();
    tun.close();
  },
);

test(
  'ping through a TUN moved into a namespace; 40 000-byte MTU; link deletion closes it',
  { skip },
  async () => {
    const name = TAG;
    const tun = await tunInNs(name, '10.91.0.1/24');
    opened.push(tun);
    // The name no longer resolves here: mtu() keeps the last value it read.
    assert.equal(tun.mtu(), 1420);
    const requestSizes: number[] = [];
    const closes: string[] = [];
    tun.start(
      (packets) => {
        const replies: Uint8Array[] = [];
        for (const p of packets) {
          const r = echoReply(p);
          if (r) {
            requestSizes.push(p.length);
            replies.push(r);
          }
        }
        if (replies.length > 0) assert.equal(tun.write(replies), replies.length);
      },
      (reason) => closes.push(reason),
    );
    const { stdout } = await inNs('ping', '-c', '3', '-i', '0.2', '-W', '1', '10.91.0.2');
    assert.match(stdout, /3 received/);
    assert.doesNotMatch(stdout, /BAD CHECKSUM|DUP/, 'ping counts replies with bad checksums too');
    assert.ok(requestSizes.length >= 3);

    await ip('-n', NS, 'link', 'set', name, 'mtu', '40000');
    const big = await inNs('ping', '-c', '1', '-W', '2', '-s', '39000', '10.91.0.2');
    assert.match(big.stdout, /1 received/);
    assert.doesNotMatch(big.stdout, /BAD CHECKSUM|DUP/);
    assert.ok(
      requestSizes.includes(39_028),
      `a 39 028-byte packet was read (${requestSizes.join(',')})`,
    );

    await ip('-n', NS, 'link', 'del', name);
    await waitFor(() => closes.length > 0, 'onClose after ip link del');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(closes.length, 1, 'onClose fires once');
    assert.equal(tun.write([echoRequest('10.91.0.2', '10.91.0.1', 1, 8)]), 0);
  },
);

test(
  'batched read and write: queued packets come in one read; one write call sends many',
  { skip },
  async () => {
    const tun = await tunInNs(TAG + 'b', '10.92.0.1/24');
    opened.push(tun);
    // Queue packets before reading starts, so the first wake-up finds them all.
    await inNs('bash', '-c', 'for i in $(seq 1 12); do echo "x$i" > /dev/udp/10.92.0.2/9999; done');
    const batches: Uint8Array[][] = [];
    tun.start(
      (packets) => batches.push(packets.map((p) => Uint8Array.from(p))),
      () => {},
    );
    const isUdp9999 = (p: Uint8Array) => p[9] === 17 && ((p[22]! << 8) | p[23]!) === 9999;
    await waitFor(() => batches.flat().filter(isUdp9999).length >= 12, '12 UDP packets');
    const first = batches.find((b) => b.some(isUdp9999))!;
    assert.equal(first.filter(isUdp9999).length, 12, 'all 12 in the first batch');

    // Echo requests from the far side, written in one call (copied, then from one slab): the
    // namespace's kernel answers each, and the replies come back through the TUN.
    batches.length = 0;
    const requests = [1, 2, 3, 4, 5].map((seq) => echoRequest('10.92.0.2', '10.92.0.1', seq, 56));
    assert.equal(tun.write(requests), 5);
    const slab = new Uint8Array(5 * 100);
    const views = [6, 7, 8, 9, 10].map((seq, i) => {
      const r = echoRequest('10.92.0.2', '10.92.0.1', seq, 56);
      slab.set(r, i * 100);
      return slab.subarray(i * 100, i * 100 + r.length);
    });
    assert.equal(tun.write(views), 5);
    const replies = () => batches.flat().filter((p) => isIcmpEcho(p, 0));
    await waitFor(() => replies().length >= 10, '10 echo replies');
    for (const r of replies())
      assert.equal(checksum(r, 20, r.length), 0, 'replies read byte-exact');
    assert.deepEqual(
      replies()
        .map((p) => p[27])
        .sort((a, b) => a! - b!),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    tun.close();
  },
);

test(
  'readNow: the echo reply the kernel makes within our write is read at once, synchronously',
  { skip },
  async () => {
    const tun = await tunInNs(TAG + 'e', '10.93.0.1/24');
    opened.push(tun);
    const replies: number[] = [];
    tun.start(
      (packets) => {
        for (const p of packets) if (isIcmpEcho(p, 0)) replies.push((p[26]! << 8) | p[27]!);
      },
      () => undefined,
    );
    for (let seq = 1; seq <= 5; seq++) {
      // An echo request from the far side of the link to the namespace's own address.
      assert.equal(tun.write([echoRequest('10.93.0.2', '10.93.0.1', seq, 16)]), 1);
      tun.readNow();
      assert.deepEqual(replies.slice(-1), [seq], `reply ${seq} read in the same turn`);
    }
    tun.close();
    tun.readNow(); // closed: nothing, no throw
  },
);

test('an inherited fd (WG_TUN_FD) is adopted by a child process', { skip }, async () => {
  const addon = native();
  const name = TAG + 'c';
  const { fd } = addon.tunOpen(name);
  try {
    const script = `
      const { tunFromFd } = await import(${JSON.stringify(new URL('dist/src/tun/index.js', repoRoot).href)});
      const tun = tunFromFd(Number(process.env.WG_TUN_FD));
      console.log(JSON.stringify({ name: tun.name, mtu: tun.mtu() }));
      tun.close();`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe', fd],
      env: { ...process.env, WG_TUN_FD: '3' },
    });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, err);
    assert.deepEqual(JSON.parse(out), { name, mtu: 1420 });
    // Our own copy of the fd is still the device.
    const again = LinuxTun.fromFd(fd, { mtu: null });
    assert.equal(again.name, name);
    again.close();
  } catch (e) {
    addon.closeFd(fd);
    throw e;
  }
  // Not a TUN: refused with a system error.
  const devNull = openSync('/dev/null', 'r');
  try {
    assert.throws(
      () => LinuxTun.fromFd(devNull),
      (e: unknown) => e instanceof WgError && e.code === 'ERR_SYSTEM',
    );
  } finally {
    closeSync(devNull);
  }
});
