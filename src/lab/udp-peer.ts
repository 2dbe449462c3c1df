/**
 * A tiny UDP transfer program run inside a namespace by `udpTransfer` (lab/traffic.ts): it moves
 * a random payload in numbered datagrams, repairs losses by asking the receiver which sequence
 * numbers it misses, and both ends print the payload's sha256 so the test compares them.
 *
 *   node udp-peer.js recv <bindAddr> <port> <timeoutMs>
 *   node udp-peer.js send <addr> <port> <bytes> <datagramSize> <timeoutMs>
 *
 * Each prints one JSON line: recv `{bytes, sha256}`; send `{bytes, sha256, datagrams, resent,
 * seconds}`. Wire: 'D' seq:u32 total:u32 payload | 'Q' (which are missing?) | 'M' n:u32
 * seq:u32... | 'F' (finish; receiver answers 'F' and exits).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';

const MAX_MISSING_PER_REPLY = 256;

function fail(msg: string): never {
  process.stderr.write(`udp-peer: ${msg}\n`);
  process.exit(1);
}

function recv(bindAddr: string, port: number, timeoutMs: number): void {
  const sock = createSocket(bindAddr.includes(':') ? 'udp6' : 'udp4');
  const parts = new Map<number, Buffer>();
  let total = -1;
  const timer = setTimeout(() => fail(`recv: timeout, got ${parts.size}/${total}`), timeoutMs);
  sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    const kind = String.fromCharCode(msg[0] ?? 0);
    if (kind === 'D' && msg.length >= 9) {
      total = msg.readUInt32BE(5);
      parts.set(msg.readUInt32BE(1), Buffer.from(msg.subarray(9)));
    } else if (kind === 'Q') {
      const missing: number[] = [];
      for (let i = 0; i < total && missing.length < MAX_MISSING_PER_REPLY; i++) {
        if (!parts.has(i)) missing.push(i);
      }
      // total < 0: nothing arrived yet; report "all missing" as the sentinel 0xffffffff.
      const list = total < 0 ? [0xffffffff] : missing;
      const out = Buffer.alloc(5 + 4 * list.length);
      out.write('M', 0);
      out.writeUInt32BE(list.length, 1);
      list.forEach((s, i) => out.writeUInt32BE(s, 5 + 4 * i));
      sock.send(out, rinfo.port, rinfo.address);
    } else if (kind === 'F') {
      const h = createHash('sha256');
      let bytes = 0;
      for (let i = 0; i < total; i++) {
        const p = parts.get(i);
        if (!p) fail(`recv: finish with datagram ${i} missing`);
        h.update(p);
        bytes += p.length;
      }
      sock.send(Buffer.from('F'), rinfo.port, rinfo.address, () => {
        clearTimeout(timer);
        process.stdout.write(`${JSON.stringify({ bytes, sha256: h.digest('hex') })}\n`);
        sock.close();
      });
    }
  });
  sock.bind(port, bindAddr, () => process.stdout.write('ready\n'));
}

function waitReply(sock: Socket, kind: string, ms: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const onMsg = (msg: Buffer) => {
      if (String.fromCharCode(msg[0] ?? 0) !== kind) return;
      clearTimeout(t);
      sock.off('message', onMsg);
      resolve(msg);
    };
    const t = setTimeout(() => {
      sock.off('message', onMsg);
      resolve(null);
    }, ms);
    sock.on('message', onMsg);
  });
}

async function send(addr: string, port: number, bytes: number, size: number, timeoutMs: number) {
  const started = Date.now();
  const deadline = started + timeoutMs;
  const payload = randomBytes(bytes);
  const total = Math.ceil(bytes / size);
  const sock = createSocket(addr.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((r) => sock.bind(0, r));
  const datagram = (seq: number) => {
    const body = payload.subarray(seq * size, Math.min(bytes, (seq + 1) * size));
    const d = Buffer.alloc(9 + body.length);
    d.write('D', 0);
    d.writeUInt32BE(seq, 1);
    d.writeUInt32BE(total, 5);
    body.copy(d, 9);
    return d;
  };
  // Bursts with a pause between them: the point is integrity, not saturating the tunnel.
  const sendAll = async (seqs: number[]) => {
    for (let i = 0; i < seqs.length; i++) {
      await new Promise<void>((r) => sock.send(datagram(seqs[i]!), port, addr, () => r()));
      if (i % 16 === 15) await new Promise((r) => setTimeout(r, 1));
    }
  };
  let resent = 0;
  let pending = Array.from({ length: total }, (_, i) => i);
  while (pending.length > 0) {
    if (Date.now() > deadline)
      fail(`send: timeout with ${pending.length} datagrams unacknowledged`);
    await sendAll(pending);
    let reply: Buffer | null = null;
    for (let i = 0; i < 5 && !reply; i++) {
      sock.send(Buffer.from('Q'), port, addr);
      reply = await waitReply(sock, 'M', 300);
    }
    if (!reply) fail('send: receiver does not answer');
    const n = reply.readUInt32BE(1);
    const missing = Array.from({ length: n }, (_, i) => reply.readUInt32BE(5 + 4 * i));
    pending = missing[0] === 0xffffffff ? Array.from({ length: total }, (_, i) => i) : missing;
    resent += pending.length;
  }
  let fin: Buffer | null = null;
  for (let i = 0; i < 5 && !fin; i++) {
    sock.send(Buffer.from('F'), port, addr);
    fin = await waitReply(sock, 'F', 300);
  }
  if (!fin) fail('send: no finish acknowledgement');
  const sha256 = createHash('sha256').update(payload).digest('hex');
  const seconds = (Date.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify({ bytes, sha256, datagrams: total, resent, seconds })}\n`);
  sock.close();
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'recv' && rest.length === 3) {
  recv(rest[0]!, Number(rest[1]), Number(rest[2]));
} else if (mode === 'send' && rest.length === 5) {
  void send(rest[0]!, Number(rest[1]), Number(rest[2]), Number(rest[3]), Number(rest[4]));
} else {
  fail(
    'usage: udp-peer.js recv <bindAddr> <port> <timeoutMs> | send <addr> <port> <bytes> <size> <timeoutMs>',
  );
}
