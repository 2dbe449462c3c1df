/**
 * The bench's network: two namespaces joined by one veth (the "underlay"), an iperf3 server and
 * an RTT echo server in namespace b, and per tunnel case a WireGuard daemon on each side with a
 * tunnel across the veth. Everything is made through a Lab, which removes it all on dispose
 * (also on SIGINT/SIGTERM).
 */
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import type { Lab, LabProcess, Netns } from '../src/lab/lab.js';
import {
  genkey,
  keyFile,
  pubkey,
  startDaemon,
  wg,
  type Daemon,
  type Impl,
} from '../src/lab/daemon.js';
import { waitFor } from '../src/lab/wait.js';

export const UNDERLAY_A = '10.231.0.1';
export const UNDERLAY_B = '10.231.0.2';
export const TUNNEL_A = '10.232.0.1';
export const TUNNEL_B = '10.232.0.2';
export const WG_PORT = 51820;
export const RTT_PORT = 5299;
/** Outer overhead of a WireGuard packet over IPv6: 40 IP + 8 UDP + 32 WireGuard. */
const WG_OVERHEAD = 80;

export const RTT_PROBE_JS = fileURLToPath(new URL('./rtt-probe.js', import.meta.url));

export interface Underlay {
  readonly a: Netns;
  readonly b: Netns;
  readonly vethA: string;
  readonly vethB: string;
  readonly iperfServer: LabProcess;
  readonly rttServer: LabProcess;
}

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

export async function makeUnderlay(lab: Lab, innerMtu: number): Promise<Underlay> {
  const a = await lab.netns('a');
  const b = await lab.netns('b');
  // No IPv6 on the underlay: router solicitations and MLD reports would be noise in the capture.
  for (const ns of [a, b]) {
    await lab.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    await lab.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.default.disable_ipv6=1']);
  }
  const v = await lab.veth(a, b, { mtu: innerMtu + WG_OVERHEAD });
  await lab.addr(a, v.a, `${UNDERLAY_A}/24`);
  await lab.addr(b, v.b, `${UNDERLAY_B}/24`);
  // Both servers bind the wildcard address, so they serve the underlay and every tunnel case.
  const iperfServer = lab.spawn(b, 'iperf3', ['-s']);
  const rttServer = lab.spawn(b, process.execPath, [RTT_PROBE_JS, 'serve', String(RTT_PORT)]);
  await waitFor(() => rttServer.output().includes('ready'), 10_000, 'the RTT echo server');
  await waitFor(
    async () => (await lab.tryExec(a, 'ncat', ['-z', '-w', '1', UNDERLAY_B, '5201'])).code === 0,
    10_000,
    'the iperf3 server',
    100,
  );
  return { a, b, vethA: v.a, vethB: v.b, iperfServer, rttServer };
}

export interface Tunnel {
  readonly daemons: readonly Daemon[];
  readonly ifA: string;
  readonly ifB: string;
  stop(): Promise<void>;
}

async function configure(
  lab: Lab,
  ns: Netns,
  d: Daemon,
  privateKey: string,
  peerPublic: string,
  peerTunnel: string,
  peerUnderlay: string,
  ownTunnel: string,
  mtu: number,
): Promise<void> {
  // The key goes through a 0600 file, never on a command line (ps would show it).
  await wg(lab, ns, [
    'set',
    d.ifname,
    'private-key',
    keyFile(lab, privateKey),
    'listen-port',
    String(WG_PORT),
    'peer',
    peerPublic,
    'allowed-ips',
    `${peerTunnel}/32`,
    'endpoint',
    `${peerUnderlay}:${WG_PORT}`,
  ]);
  await lab.addr(ns, d.ifname, `${ownTunnel}/24`);
  await lab.exec(ns, 'ip', ['link', 'set', d.ifname, 'mtu', String(mtu), 'up']);
}

/**
 * Starts `implA` in namespace a and `implB` in b as users start them (`<impl> <ifname>`, which
 * daemonizes: wireguard-ts's child then gets its default heap flags), configures a tunnel between
 * them and waits until a probe crosses it (the first handshake). The daemons' pids are found
 * by their command lines in the namespaces, for the CPU and RSS figures.
 */
export async function startTunnel(
  lab: Lab,
  u: Underlay,
  caseName: string,
  implA: Impl,
  implB: Impl,
  mtu: number,
  env: Readonly<Record<string, string>>,
  build: { readonly goCommand?: string } = {},
): Promise<Tunnel> {
  const ifA = lab.name(`${caseName}a`);
  const ifB = lab.name(`${caseName}b`);
  const daemons: Daemon[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(daemons.map((d) => d.stop()));
    await lab.tryExec(u.a, 'ip', ['link', 'del', ifA]);
    await lab.tryExec(u.b, 'ip', ['link', 'del', ifB]);
  };
  try {
    const da = await startDaemon(lab, u.a, implA, ifA, { env, ...build });
    daemons.push(da);
    const db = await startDaemon(lab, u.b, implB, ifB, { env, ...build });
    daemons.push(db);
    const keyA = await genkey(lab);
    const keyB = await genkey(lab);
    await configure(
      lab,
      u.a,
      da,
      keyA,
      await pubkey(lab, keyB),
      TUNNEL_B,
      UNDERLAY_B,
      TUNNEL_A,
      mtu,
    );
    await configure(
      lab,
      u.b,
      db,
      keyB,
      await pubkey(lab, keyA),
      TUNNEL_A,
      UNDERLAY_A,
      TUNNEL_B,
      mtu,
    );
    await waitFor(
      async () => (await lab.tryExec(u.a, 'ncat', ['-z', '-w', '1', TUNNEL_B, '5201'])).code === 0,
      20_000,
      `a connection through the ${caseName} tunnel`,
      200,
    );
  } catch (err) {
    // A half-built tunnel must not keep burning CPU under the next case.
    await stop();
    throw err;
  }
  return { daemons, ifA, ifB, stop };
}
