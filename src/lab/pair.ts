/**
 * A ready-to-use WireGuard pair: two namespaces joined by a veth (IPv4 + IPv6 underlay), a daemon
 * in each (any implementation), fresh keys, configured with `wg set` as a user would, inner
 * addresses on the wg links and everything up. Plus readers for `wg show` used by scenarios.
 *
 *   const p = await makePair(lab, 'ts', 'go', { outer: 6, psk: await genpsk(lab) });
 *   await waitPing(lab, p.a.ns, p.b.inner4);
 *   await showEndpoint(lab, p.b, p.a.publicKey);     // '[fd00:241::1]:51820'
 *
 * Addresses (every pair has its own namespaces, so they repeat across pairs):
 *   underlay A 192.168.241.1/24 fd00:241::1/64, B .2 / ::2     (veth)
 *   inner    A 10.241.0.1/24    fd99::1/64,     B .2 / ::2     (wg links; the peer's
 *            allowed-ips are its /32 and /128)
 *   ports    A 51820, B 51821
 */
import { genkey, keyFile, pubkey, startDaemon, wg, type Daemon, type Impl } from './daemon.js';
import type { Lab, Netns } from './lab.js';
import { ping } from './traffic.js';
import { waitFor } from './wait.js';

export interface PairEnd {
  readonly side: 'a' | 'b';
  readonly ns: Netns;
  readonly impl: Impl;
  readonly ifname: string;
  readonly daemon: Daemon;
  readonly privateKey: string;
  readonly publicKey: string;
  readonly port: number;
  /** This end's veth link name. */
  readonly veth: string;
  readonly under4: string;
  readonly under6: string;
  readonly inner4: string;
  readonly inner6: string;
  /** How the other end reaches this one (`ip:port` or `[ip6]:port`, per the pair's `outer`). */
  readonly endpoint: string;
}

export interface Pair {
  readonly a: PairEnd;
  readonly b: PairEnd;
  readonly outer: 4 | 6;
}

export interface PairOptions {
  /** Outer (underlay) family of the configured endpoints; default 4. */
  readonly outer?: 4 | 6;
  /** Preshared key: one for both ends, or [A's, B's] (different ones must fail to handshake). */
  readonly psk?: string | readonly [string, string];
  /** persistent-keepalive on A's peer entry (seconds). */
  readonly keepalive?: number;
  /** Which ends get the other's endpoint configured; default 'both'. */
  readonly endpoints?: 'both' | 'a' | 'b' | 'none';
  /** MTU of the wg links (default: the daemon's, 1420). */
  readonly wgMtu?: number;
  /** MTU of the veth (default 1500). */
  readonly vethMtu?: number;
  readonly ports?: readonly [number, number];
  /** Name stem for this pair (default p1, p2...); keep it ≤ 3 chars. */
  readonly stem?: string;
  readonly daemonEnv?: Readonly<Record<string, string>>;
}

interface Side {
  readonly side: 'a' | 'b';
  readonly n: number;
  readonly impl: Impl;
}

/** Builds a pair as described in the file header; everything is owned by `lab`. */
export async function makePair(
  lab: Lab,
  implA: Impl,
  implB: Impl,
  o: PairOptions = {},
): Promise<Pair> {
  const stem = o.stem ?? lab.next('p');
  const outer = o.outer ?? 4;
  const ports = o.ports ?? [51820, 51821];
  const nsA = await lab.netns(`${stem}a`);
  const nsB = await lab.netns(`${stem}b`);
  const veth = await lab.veth(nsA, nsB, {
    names: [lab.name(`${stem}va`), lab.name(`${stem}vb`)],
    ...(o.vethMtu !== undefined ? { mtu: o.vethMtu } : {}),
  });
  const sides: Side[] = [
    { side: 'a', n: 1, impl: implA },
    { side: 'b', n: 2, impl: implB },
  ];
  const nsOf = (s: Side) => (s.side === 'a' ? nsA : nsB);
  const vethOf = (s: Side) => (s.side === 'a' ? veth.a : veth.b);
  for (const s of sides) {
    await lab.addr(nsOf(s), vethOf(s), `192.168.241.${s.n}/24`);
    await lab.addr(nsOf(s), vethOf(s), `fd00:241::${s.n}/64`);
  }
  const dOpts = o.daemonEnv ? { env: o.daemonEnv } : {};
  const [dA, dB] = await Promise.all(
    sides.map((s) => startDaemon(lab, nsOf(s), s.impl, lab.name(`${stem}w${s.side}`), dOpts)),
  );
  const ends: PairEnd[] = [];
  for (const s of sides) {
    const privateKey = await genkey(lab);
    const port = ports[s.n - 1]!;
    ends.push({
      side: s.side,
      ns: nsOf(s),
      impl: s.impl,
      ifname: (s.side === 'a' ? dA : dB)!.ifname,
      daemon: (s.side === 'a' ? dA : dB)!,
      privateKey,
      publicKey: await pubkey(lab, privateKey),
      port,
      veth: vethOf(s),
      under4: `192.168.241.${s.n}`,
      under6: `fd00:241::${s.n}`,
      inner4: `10.241.0.${s.n}`,
      inner6: `fd99::${s.n}`,
      endpoint: outer === 6 ? `[fd00:241::${s.n}]:${port}` : `192.168.241.${s.n}:${port}`,
    });
  }
  const [a, b] = ends as [PairEnd, PairEnd];
  const psks = o.psk === undefined ? undefined : typeof o.psk === 'string' ? [o.psk, o.psk] : o.psk;
  const endpoints = o.endpoints ?? 'both';
  for (const [self, peer, i] of [
    [a, b, 0],
    [b, a, 1],
  ] as const) {
    const args = ['set', self.ifname, 'private-key', keyFile(lab, self.privateKey)];
    args.push('listen-port', `${self.port}`, 'peer', peer.publicKey);
    args.push('allowed-ips', `${peer.inner4}/32,${peer.inner6}/128`);
    if (psks) args.push('preshared-key', keyFile(lab, psks[i]!));
    if (endpoints === 'both' || endpoints === self.side) args.push('endpoint', peer.endpoint);
    if (o.keepalive !== undefined && self.side === 'a') {
      args.push('persistent-keepalive', `${o.keepalive}`);
    }
    await wg(lab, self.ns, args);
    if (o.wgMtu !== undefined) {
      await lab.exec(self.ns, 'ip', ['link', 'set', self.ifname, 'mtu', `${o.wgMtu}`]);
    }
    await lab.addr(self.ns, self.ifname, `${self.inner4}/24`);
    await lab.addr(self.ns, self.ifname, `${self.inner6}/64`);
    await lab.exec(self.ns, 'ip', ['link', 'set', self.ifname, 'up']);
  }
  return { a, b, outer };
}

export interface PeerDump {
  readonly publicKey: string;
  readonly presharedKey: string;
  /** '(none)' when unknown. */
  readonly endpoint: string;
  readonly allowedIps: string;
  /** Unix seconds; 0 = never. */
  readonly latestHandshake: number;
  readonly rxBytes: number;
  readonly txBytes: number;
  readonly persistentKeepalive: string;
}

/** Parses `wg show <if> dump` peer lines (the first line is the interface). */
export async function showPeers(lab: Lab, end: { ns: Netns; ifname: string }): Promise<PeerDump[]> {
  const out = await wg(lab, end.ns, ['show', end.ifname, 'dump']);
  return out
    .trim()
    .split('\n')
    .slice(1)
    .filter(Boolean)
    .map((line) => {
      const f = line.split('\t');
      return {
        publicKey: f[0]!,
        presharedKey: f[1]!,
        endpoint: f[2]!,
        allowedIps: f[3]!,
        latestHandshake: Number(f[4]),
        rxBytes: Number(f[5]),
        txBytes: Number(f[6]),
        persistentKeepalive: f[7]!,
      };
    });
}

/** The endpoint `wg show <if> endpoints` reports for `peerKey` ('(none)' when unknown). */
export async function showEndpoint(
  lab: Lab,
  end: { ns: Netns; ifname: string },
  peerKey: string,
): Promise<string | undefined> {
  const out = await wg(lab, end.ns, ['show', end.ifname, 'endpoints']);
  for (const line of out.trim().split('\n')) {
    const [k, ep] = line.split('\t');
    if (k === peerKey) return ep;
  }
  return undefined;
}

/** Latest handshake (Unix seconds, 0 = never) with `peerKey`. */
export async function latestHandshake(
  lab: Lab,
  end: { ns: Netns; ifname: string },
  peerKey: string,
): Promise<number> {
  const peers = await showPeers(lab, end);
  return peers.find((p) => p.publicKey === peerKey)?.latestHandshake ?? 0;
}

/**
 * A forgets its session with B: B is removed from A and added again, with its endpoint and
 * allowed IPs, so the next packet starts a fresh handshake (from A, with a new timestamp).
 */
export async function forgetSession(lab: Lab, p: Pair): Promise<void> {
  await wg(lab, p.a.ns, ['set', p.a.ifname, 'peer', p.b.publicKey, 'remove']);
  await wg(lab, p.a.ns, [
    ...['set', p.a.ifname, 'peer', p.b.publicKey, 'endpoint', `${p.b.under4}:${p.b.port}`],
    ...['allowed-ips', `${p.b.inner4}/32,${p.b.inner6}/128`],
  ]);
}

/**
 * One ping from A to B starts a handshake; resolves whether A records it within `timeoutMs`,
 * and after how many seconds.
 */
export async function handshakeOnPing(
  lab: Lab,
  p: Pair,
  timeoutMs = 5000,
): Promise<{ done: boolean; seconds: number }> {
  const start = Date.now();
  void ping(lab, p.a.ns, p.b.inner4, { count: 1, waitS: 1 });
  const done = await waitFor(
    async () => (await latestHandshake(lab, p.a, p.b.publicKey)) > 0,
    timeoutMs,
    'handshake from A',
    50,
  ).then(
    () => true,
    () => false,
  );
  return { done, seconds: (Date.now() - start) / 1000 };
}
