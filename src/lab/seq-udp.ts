/**
 * Numbered UDP datagrams for order tests (run inside a namespace by a test):
 *
 *   node seq-udp.js recv <bindAddr> <port> <count> <timeoutMs>
 *   node seq-udp.js send <addr> <port> <count> <size> <burst>
 *
 * The sender sends `count` datagrams of `size` bytes numbered 0..count-1, `burst` at a time,
 * yielding between bursts. The receiver prints one JSON line: how many arrived, how many were
 * duplicates, how many came after a higher number (reordered), and the highest number seen.
 */
import { createSocket } from 'node:dgram';

function recv(bind: string, port: number, count: number, timeoutMs: number): void {
  const sock = createSocket(bind.includes(':') ? 'udp6' : 'udp4');
  const seen = new Uint8Array(count);
  let received = 0;
  let duplicates = 0;
  let reordered = 0;
  let highest = -1;
  const done = () => {
    process.stdout.write(`${JSON.stringify({ received, duplicates, reordered, highest })}\n`);
    process.exit(0);
  };
  const timer = setTimeout(done, timeoutMs);
  sock.on('message', (msg: Buffer) => {
    if (msg.length < 4) return;
    const n = msg.readUInt32BE(0);
    if (n >= count) return;
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
    // Bursts must not overflow the test's own socket: losses should only come from the tunnel.
    sock.setRecvBufferSize(16 * 1024 * 1024);
    process.stdout.write('ready\n');
  });
}

function send(addr: string, port: number, count: number, size: number, burst: number): void {
  const sock = createSocket(addr.includes(':') ? 'udp6' : 'udp4');
  let next = 0;
  const step = () => {
    const end = Math.min(count, next + burst);
    for (; next < end; next++) {
      const b = Buffer.alloc(size);
      b.writeUInt32BE(next, 0);
      sock.send(b, port, addr);
    }
    if (next < count) setTimeout(step, 2);
    else setTimeout(() => sock.close(), 200);
  };
  step();
}

const [mode, a, p, c, x, y] = process.argv.slice(2);
if (mode === 'recv') recv(a!, Number(p), Number(c), Number(x));
else if (mode === 'send') send(a!, Number(p), Number(c), Number(x), Number(y));
else {
  process.stderr.write('usage: seq-udp.js recv|send ...\n');
  process.exit(2);
}
