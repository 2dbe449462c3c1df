/**
 * Traffic through the lab: ping, a TCP transfer through ncat and a UDP transfer (udp-peer.js),
 * each checking the payload's sha256 at the far end, and file hashes inside a namespace.
 *
 *   await waitPing(lab, a, '10.241.0.2', 10_000);        // retries until one reply arrives
 *   const t = await tcpTransfer(lab, a, b, '10.241.0.2', { bytes: 4 << 20 });
 *   assert.equal(t.receivedSha256, t.sentSha256);
 */
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Lab, Netns } from './lab.js';
import { timeoutNull, waitFor } from './wait.js';

export interface PingOptions {
  readonly count?: number;
  /** ICMP payload size (`-s`). */
  readonly size?: number;
  /** Forbid fragmentation (`-M do`). */
  readonly dontFragment?: boolean;
  /** Seconds to wait for each reply (`-W`, default 1). */
  readonly waitS?: number;
  /** Seconds between pings (`-i`, default 0.2). */
  readonly intervalS?: number;
}

function pingArgs(addr: string, o: PingOptions): string[] {
  const args = [
    '-n',
    '-q',
    '-c',
    `${o.count ?? 1}`,
    '-W',
    `${o.waitS ?? 1}`,
    '-i',
    `${o.intervalS ?? 0.2}`,
  ];
  if (o.size !== undefined) args.push('-s', `${o.size}`);
  if (o.dontFragment) args.push('-M', 'do');
  if (addr.includes(':')) args.unshift('-6');
  args.push(addr);
  return args;
}

/** True when every one of `count` pings got a reply. */
export async function ping(
  lab: Lab,
  ns: Netns | null,
  addr: string,
  o: PingOptions = {},
): Promise<boolean> {
  const r = await lab.tryExec(ns, 'ping', pingArgs(addr, o));
  if (r.code !== 0) return false;
  const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
  return !!m && m[1] === m[2];
}

/** Pings once per try until a reply arrives (handshakes take a round trip or a retry). */
export async function waitPing(
  lab: Lab,
  ns: Netns | null,
  addr: string,
  timeoutMs = 10_000,
  o: PingOptions = {},
): Promise<void> {
  await waitFor(
    () => ping(lab, ns, addr, { ...o, count: 1 }),
    timeoutMs,
    `ping ${addr} from ${ns?.name ?? 'root'}`,
    0,
  );
}

export interface TransferResult {
  readonly bytes: number;
  readonly receivedBytes: number;
  readonly sentSha256: string;
  readonly receivedSha256: string;
  readonly seconds: number;
  /** Payload megabits per second (10^6), sender start to receiver end. */
  readonly mbitPerSec: number;
}

export interface TcpOptions {
  readonly bytes: number;
  readonly port?: number;
  readonly timeoutMs?: number;
}

async function listening(
  lab: Lab,
  ns: Netns,
  proto: 'tcp' | 'udp',
  port: number,
): Promise<boolean> {
  const r = await lab.tryExec(ns, 'ss', [proto === 'tcp' ? '-Hltn' : '-Hlun', `sport = :${port}`]);
  return r.code === 0 && r.stdout.trim() !== '';
}

/**
 * Sends `bytes` random bytes from `from` to `toAddr` (inside `to`) over TCP with ncat; the
 * receiver's output is hashed as it arrives.
 */
export async function tcpTransfer(
  lab: Lab,
  from: Netns,
  to: Netns,
  toAddr: string,
  o: TcpOptions,
): Promise<TransferResult> {
  const port = o.port ?? 5201 + Math.floor(Math.random() * 1000);
  const timeoutMs = o.timeoutMs ?? 30_000;
  const rx = lab.spawn(to, 'ncat', ['-l', '--recv-only', '-p', `${port}`], { capture: false });
  const rxHash = createHash('sha256');
  let receivedBytes = 0;
  rx.stdout?.on('data', (d: Buffer) => {
    rxHash.update(d);
    receivedBytes += d.length;
  });
  const rxDone = new Promise<void>((resolve) => rx.stdout?.once('end', resolve));
  await waitFor(() => listening(lab, to, 'tcp', port), 5000, `ncat listening on ${port}`, 20);
  const started = Date.now();
  const tx = lab.spawn(from, 'ncat', ['--send-only', toAddr, `${port}`], { stdin: 'pipe' });
  const txHash = createHash('sha256');
  const chunk = 64 * 1024;
  const stdin = tx.stdin!;
  stdin.on('error', () => undefined); // reported through the exit status below
  for (let sent = 0; sent < o.bytes && !tx.exitStatus(); sent += chunk) {
    const buf = randomBytes(Math.min(chunk, o.bytes - sent));
    txHash.update(buf);
    if (!stdin.write(buf)) await new Promise((r) => stdin.once('drain', r));
  }
  stdin.end();
  const timeout = timeoutNull(timeoutMs);
  const txStatus = await Promise.race([tx.exited, timeout]);
  if (!txStatus || txStatus.code !== 0) {
    throw new Error(`tcp sender failed (${JSON.stringify(txStatus)}): ${tx.output()}`);
  }
  const rxStatus = await Promise.race([Promise.all([rx.exited, rxDone]), timeout]);
  if (!rxStatus) {
    throw new Error(`tcp receiver did not finish: got ${receivedBytes}/${o.bytes} bytes`);
  }
  const seconds = Math.max(0.001, (Date.now() - started) / 1000);
  return {
    bytes: o.bytes,
    receivedBytes,
    sentSha256: txHash.digest('hex'),
    receivedSha256: rxHash.digest('hex'),
    seconds,
    mbitPerSec: (receivedBytes * 8) / seconds / 1e6,
  };
}

export interface UdpOptions {
  readonly bytes: number;
  /** UDP payload per datagram; keep it under the tunnel MTU minus headers (default 1200). */
  readonly datagramSize?: number;
  readonly port?: number;
  readonly timeoutMs?: number;
}

export interface UdpResult extends TransferResult {
  readonly datagrams: number;
  /** Datagrams sent again because the receiver missed them. */
  readonly resent: number;
}

const UDP_PEER = fileURLToPath(new URL('./udp-peer.js', import.meta.url));

/**
 * Moves `bytes` random bytes in numbered UDP datagrams from `from` to `toAddr` (inside `to`),
 * repairing losses, and reports both ends' sha256.
 */
export async function udpTransfer(
  lab: Lab,
  from: Netns,
  to: Netns,
  toAddr: string,
  o: UdpOptions,
): Promise<UdpResult> {
  const port = o.port ?? 6201 + Math.floor(Math.random() * 1000);
  const timeoutMs = o.timeoutMs ?? 30_000;
  const bind = toAddr.includes(':') ? '::' : '0.0.0.0';
  const rx = lab.spawn(to, process.execPath, [UDP_PEER, 'recv', bind, `${port}`, `${timeoutMs}`]);
  await waitFor(() => rx.output().includes('ready') || !!rx.exitStatus(), 5000, 'udp receiver', 20);
  const size = o.datagramSize ?? 1200;
  const tx = await lab.tryExec(
    from,
    process.execPath,
    [UDP_PEER, 'send', toAddr, `${port}`, `${o.bytes}`, `${size}`, `${timeoutMs}`],
    { timeoutMs: timeoutMs + 2000 },
  );
  if (tx.code !== 0) throw new Error(`udp sender failed: ${tx.stderr}`);
  const st = await Promise.race([rx.exited, timeoutNull(3000)]);
  if (!st || st.code !== 0) throw new Error(`udp receiver failed: ${rx.output()}`);
  const sent = JSON.parse(tx.stdout.trim()) as {
    bytes: number;
    sha256: string;
    datagrams: number;
    resent: number;
    seconds: number;
  };
  const lines = rx.output().trim().split('\n');
  const got = JSON.parse(lines[lines.length - 1]!) as { bytes: number; sha256: string };
  const seconds = Math.max(0.001, sent.seconds);
  return {
    bytes: o.bytes,
    receivedBytes: got.bytes,
    sentSha256: sent.sha256,
    receivedSha256: got.sha256,
    seconds,
    mbitPerSec: (got.bytes * 8) / seconds / 1e6,
    datagrams: sent.datagrams,
    resent: sent.resent,
  };
}

/** sha256 of a file inside a namespace (sha256sum). */
export async function sha256File(lab: Lab, ns: Netns | null, path: string): Promise<string> {
  const r = await lab.exec(ns, 'sha256sum', [path]);
  return r.stdout.split(/\s+/)[0]!;
}

export interface LinkStats {
  readonly rxPackets: number;
  readonly txPackets: number;
  readonly rxBytes: number;
  readonly txBytes: number;
  readonly mtu: number;
}

/** A link's kernel counters and MTU (`ip -s -j link show`). */
export async function linkStats(lab: Lab, ns: Netns | null, dev: string): Promise<LinkStats> {
  const r = await lab.exec(ns, 'ip', ['-s', '-j', 'link', 'show', 'dev', dev]);
  const [link] = JSON.parse(r.stdout) as {
    mtu: number;
    stats64: { rx: { packets: number; bytes: number }; tx: { packets: number; bytes: number } };
  }[];
  if (!link) throw new Error(`no link ${dev}`);
  const s = link.stats64;
  return {
    rxPackets: s.rx.packets,
    txPackets: s.tx.packets,
    rxBytes: s.rx.bytes,
    txBytes: s.tx.bytes,
    mtu: link.mtu,
  };
}
