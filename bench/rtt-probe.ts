/**
 * A UDP echo probe for round-trip times where iputils ping is not installed. Run inside a
 * namespace as a separate process:
 *   node rtt-probe.js serve PORT               echoes every datagram back to its sender
 *   node rtt-probe.js probe HOST PORT COUNT [MS]  sends COUNT 64-byte probes MS (10) ms apart and
 *                                             prints {"sent":N,"timesMs":[...]} (lost probes omitted)
 */
import { createSocket } from 'node:dgram';

const PROBE_BYTES = 64;
const DEFAULT_INTERVAL_MS = 10;
const LAST_REPLY_WAIT_MS = 1000;

function serve(port: number): void {
  const sock = createSocket('udp4');
  sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
  sock.bind(port, () => process.stdout.write('ready\n'));
}

function probe(host: string, port: number, count: number, intervalMs: number): void {
  const sock = createSocket('udp4');
  const sentAt = new Map<number, bigint>();
  const timesMs: number[] = [];
  const buf = Buffer.alloc(PROBE_BYTES);
  sock.on('message', (msg) => {
    if (msg.length < 4) return;
    const t0 = sentAt.get(msg.readUInt32BE(0));
    if (t0 === undefined) return;
    sentAt.delete(msg.readUInt32BE(0));
    timesMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  });
  let seq = 0;
  const timer = setInterval(() => {
    if (seq >= count) {
      clearInterval(timer);
      setTimeout(() => {
        process.stdout.write(JSON.stringify({ sent: count, timesMs }) + '\n');
        sock.close();
      }, LAST_REPLY_WAIT_MS);
      return;
    }
    buf.writeUInt32BE(seq, 0);
    sentAt.set(seq, process.hrtime.bigint());
    sock.send(buf, port, host);
    seq++;
  }, intervalMs);
}

const [mode, a, b, c, d] = process.argv.slice(2);
if (mode === 'serve' && a) serve(Number(a));
else if (mode === 'probe' && a && b && c)
  probe(a, Number(b), Number(c), Number(d ?? DEFAULT_INTERVAL_MS));
else {
  process.stderr.write('usage: rtt-probe serve PORT | probe HOST PORT COUNT [MS]\n');
  process.exitCode = 2;
}
