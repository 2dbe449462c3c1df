/**
 * Numbered UDP datagrams whose every byte is known, for integrity tests of coalescing paths (run
 * inside a namespace by a test):
 *
 *   node udp-pattern.js recv <bindAddr> <port> <count> <size> <timeoutMs>
 *   node udp-pattern.js send <addr> <port> <count> <size> <burst>
 *
 * Datagram n is `size` bytes: n as a 32-bit big-endian number, then patternByte(n, i) at each
 * offset i >= 4. The sender sends `burst` datagrams back to back, then yields for 1 ms, so the
 * tunnel sees runs of one flow. The receiver prints one JSON line: datagrams received intact,
 * corrupt (wrong length or any wrong byte), duplicates, and reordered.
 */
import { createSocket } from 'node:dgram';

/** The byte at offset i of datagram n: depends on both, so a shifted or swapped payload fails. */
export function patternByte(n: number, i: number): number {
  return (n * 131 + i * 7 + (i >> 8)) & 0xff;
}

function datagram(n: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32BE(n, 0);
  for (let i = 4; i < size; i++) b[i] = patternByte(n, i);
  return b;
}

function intact(msg: Buffer, n: number, size: number): boolean {
  if (msg.length !== size) return false;
  for (let i = 4; i < size; i++) if (msg[i] !== patternByte(n, i)) return false;
  return true;
}

function recv(bind: string, port: number, count: number, size: number, timeoutMs: number): void {
  const sock = createSocket(bind.includes(':') ? 'udp6' : 'udp4');
  const seen = new Uint8Array(count);
  let received = 0;
  let corrupt = 0;
  let duplicates = 0;
  let reordered = 0;
  let highest = -1;
  const done = () => {
    process.stdout.write(`${JSON.stringify({ received, corrupt, duplicates, reordered })}\n`);
    process.exit(0);
  };
  const timer = setTimeout(done, timeoutMs);
  sock.on('message', (msg: Buffer) => {
    const n = msg.length >= 4 ? msg.readUInt32BE(0) : count;
    if (n >= count || !intact(msg, n, size)) {
      corrupt++;
      return;
    }
    if (seen[n]) duplicates++;
    else {
      seen[n] = 1;
      received++;
    }
    if (n < highest) reordered++;
    else highest = n;
    if (received === count) {
      clearTimeout(timer);
      done();
    }
  });
  sock.bind(port, bind, () => {
    // Losses should come from the tunnel only, not from this socket's queue.
    sock.setRecvBufferSize(16 * 1024 * 1024);
    process.stdout.write('ready\n');
  });
}

function send(addr: string, port: number, count: number, size: number, burst: number): void {
  const sock = createSocket(addr.includes(':') ? 'udp6' : 'udp4');
  let next = 0;
  const step = () => {
    const end = Math.min(count, next + burst);
    for (; next < end; next++) sock.send(datagram(next, size), port, addr);
    if (next < count) setTimeout(step, 1);
    else setTimeout(() => sock.close(), 200);
  };
  step();
}

const [mode, a, p, c, s, x] = process.argv.slice(2);
if (mode === 'recv') recv(a!, Number(p), Number(c), Number(s), Number(x));
else if (mode === 'send') send(a!, Number(p), Number(c), Number(s), Number(x));
else if (mode !== undefined) {
  process.stderr.write('usage: udp-pattern.js recv|send ...\n');
  process.exit(2);
}
