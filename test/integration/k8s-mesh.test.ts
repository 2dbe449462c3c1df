// Three (then four) simulated nodes, each a network namespace with a "pod" namespace behind a
// veth, joined by a bridge that also reaches the test API server in the root namespace; each
// runs `wireguard-ts k8s` against that server. Checks: keys published, the mesh forms, pods talk
// across nodes and the underlay carries only WireGuard UDP; node added, deleted, key changed; API
// server outage; agent restart without loss; node reboot with the persisted key; --strict toward
// a keyless node; in-cluster credentials over HTTPS with a token rotated under a running agent;
// --route-source workload-ips with pods coming and going. The API server is HTTPS with a CA made
// for the run and wants a bearer token. The daemons are mixed, as in a cluster mid-migration:
// odd nodes run bin/wireguard-ts, even nodes wireguard-go (WG_TS_K8S_DAEMON=<command> forces
// one for all).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, statSync } from 'node:fs';
import { sleep, waitFor as waitForBare } from '../../src/lab/wait.js';
import { daemonFor, MAIN, SimCluster, simSkipReason, type SimNode } from './k8s/sim-cluster.js';

const TABLE = '51820';
const skip = simSkipReason();
const sim = new SimCluster({ underlay: 4, dualStackPods: false });
const { lab, nodes } = sim;
const makeNode = (i: number, o: { register: boolean }) => sim.addNode(i, o);
const startAgent = (n: SimNode, extra: string[] = [], o: { inCluster?: boolean } = {}) =>
  sim.startAgent(n, extra, o);
const stopAgent = (n: SimNode) => sim.stopAgent(n);
const wgPeers = (n: SimNode) => sim.wgPeers(n);
const pubOf = (n: SimNode) => sim.pubOf(n);
const meshFormed = (members: SimNode[]) => sim.meshFormed(members);
const ping = (from: SimNode, to: SimNode, count = 1) => sim.ping(from, to, { count });
const agentLog = () => sim.agentLog();
/** waitFor, with the agents' recent logs in the failure message. */
async function waitFor(
  pred: () => Promise<boolean> | boolean,
  ms: number,
  what: string,
  every?: number,
) {
  try {
    await waitForBare(pred, ms, what, every);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${agentLog()}`);
  }
}
const spawnCapture = (filter: string) => sim.capture(filter);

before(async () => {
  if (skip) return;
  await sim.setup();
  for (const i of [1, 2, 3]) await makeNode(i, { register: true });
  // node0 runs no agent (no key): the CNI's plain routes reach its pods in clear text.
  const n0 = await makeNode(0, { register: true });
  for (const i of [1, 2, 3]) {
    const n = nodes.get(i)!;
    await lab.exec(n.ns, 'ip', ['route', 'add', '10.244.0.0/24', 'via', n0.ip]);
    await lab.exec(n0.ns, 'ip', ['route', 'add', `10.244.${i}.0/24`, 'via', n.ip]);
  }
});

after(async () => {
  if (!skip) await sim.dispose();
});

test(
  'keys are published and persisted, the mesh forms, and only WireGuard crosses the underlay',
  { skip },
  async () => {
    for (const i of [1, 2, 3]) startAgent(nodes.get(i)!);
    const members = [1, 2, 3].map((i) => nodes.get(i)!);
    try {
      await waitFor(() => meshFormed(members), 20_000, 'three-node mesh', 200);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${agentLog()}`);
    }
    for (const n of members) {
      assert.equal(sim.api.annotations(n.name)['wireguard-ts.io/port'], '51820');
      assert.equal(statSync(n.keyFile).mode & 0o777, 0o600);
    }
    const cap = spawnCapture(`ip and not tcp port ${new URL(sim.api.url).port}`);
    try {
      await sleep(300);
      try {
        for (const [a, b] of [
          [1, 2],
          [2, 3],
          [3, 1],
        ] as const) {
          await waitFor(
            () => ping(nodes.get(a)!, nodes.get(b)!),
            10_000,
            `pod ${a} -> pod ${b}`,
            100,
          );
        }
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${agentLog()}`);
      }
      await sleep(300);
    } finally {
      await cap.stop();
    }
    const lines = cap.lines();
    const wgLines = lines.filter((l) => /\.51820[: ]/.test(l) && / UDP/.test(l));
    assert.ok(wgLines.length > 0, `WireGuard UDP seen on the underlay:\n${lines.join('\n')}`);
    assert.deepEqual(
      lines.filter((l) => !wgLines.includes(l)),
      [],
      'nothing but WireGuard UDP between nodes',
    );
  },
);

test(
  'agent state: routes in a table, the fwmark rule, device MTU, metrics and probes',
  { skip },
  async () => {
    const n = nodes.get(1)!;
    const routes = (await lab.exec(n.ns, 'ip', ['route', 'show', 'table', TABLE])).stdout;
    assert.match(routes, /10\.244\.2\.0\/24 dev \S+/);
    assert.match(routes, /throw 10\.244\.1\.0\/24/);
    assert.doesNotMatch(routes, /10\.244\.0\.0/, 'no route for the keyless node without --strict');
    const rules = (await lab.exec(n.ns, 'ip', ['rule', 'show'])).stdout;
    assert.match(rules, /100:\s+not from all fwmark 0x80000\/0x80000 lookup 51820/);
    const link = (await lab.exec(n.ns, 'ip', ['-j', 'link', 'show', n.ifname])).stdout;
    assert.equal(
      (JSON.parse(link) as Array<{ mtu: number }>)[0]!.mtu,
      1420,
      'uplink 1500 - 80 (auto MTU, src/control/mtu.ts)',
    );
    const dump = (await lab.exec(n.ns, 'wg', ['show', n.ifname, 'fwmark'])).stdout.trim();
    assert.equal(dump, '0x80000');
    const scrape = await lab.exec(n.ns, 'curl', ['-sf', 'http://127.0.0.1:9586/metrics']);
    assert.match(
      scrape.stdout,
      new RegExp(
        `wireguard_latest_handshake_seconds\\{[^}]*peer_key="${escapeRe(pubOf(nodes.get(2)!)!)}"[^}]*\\} [1-9]`,
      ),
    );
    assert.match(scrape.stdout, /wireguard_bytes_sent\{[^}]*\} [1-9]/);
    assert.match(scrape.stdout, /wireguard_ts_agent_peers\{state="peer"\} 2/);
    assert.match(scrape.stdout, /wireguard_ts_agent_peers\{state="keyless"\} 1/);
    assert.equal(
      (await lab.tryExec(n.ns, 'curl', ['-sf', 'http://127.0.0.1:9586/readyz'])).code,
      0,
    );
    assert.equal(
      (await lab.tryExec(n.ns, 'curl', ['-sf', 'http://127.0.0.1:9586/healthz'])).code,
      0,
    );
  },
);

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

test('keyless node: plaintext by default, dropped with --strict', { skip }, async () => {
  const n1 = nodes.get(1)!;
  const n0 = nodes.get(0)!;
  // The negative control for the capture above: traffic to a keyless node is visible in clear.
  const cap = spawnCapture('icmp');
  try {
    await sleep(300);
    assert.equal(await ping(n1, n0), true, 'fail-open without --strict');
    await sleep(200);
  } finally {
    await cap.stop();
  }
  assert.ok(
    cap.lines().some((l) => l.includes(`${n1.podIp} > ${n0.podIp}`)),
    `plaintext ICMP seen:\n${cap.lines().join('\n')}`,
  );
  await stopAgent(n1);
  startAgent(n1, ['--strict']);
  await waitFor(
    async () =>
      (await lab.exec(n1.ns, 'ip', ['route', 'show', 'table', TABLE])).stdout.includes(
        'unreachable 10.244.0.0/24',
      ),
    10_000,
    'strict route',
  );
  assert.equal(await ping(n1, n0), false, 'fail-closed with --strict');
  assert.equal(await ping(n1, nodes.get(2)!), true, 'keyed peers still reachable');
  await stopAgent(n1);
  startAgent(n1);
  await waitFor(() => ping(n1, n0), 10_000, 'plaintext again without --strict');
});

test('an agent restart loses no packet (the daemon and routes stay up)', { skip }, async () => {
  const n1 = nodes.get(1)!;
  const n2 = nodes.get(2)!;
  await waitFor(() => ping(n1, n2), 10_000, 'baseline');
  const pinger = lab.spawn(n1.pod, 'ping', ['-i', '0.05', '-c', '80', '-W', '1', n2.podIp]);
  await sleep(500);
  await stopAgent(n1);
  startAgent(n1);
  await waitFor(
    async () =>
      (await lab.tryExec(n1.ns, 'curl', ['-sf', 'http://127.0.0.1:9586/readyz'])).code === 0,
    10_000,
    'agent ready again',
  );
  const st = await pinger.exited;
  const out = pinger.output();
  assert.equal(st.code, 0, out);
  assert.match(out, /80 packets transmitted, 80 received/, out);
  assert.match(n1.agent!.output(), /reattached/);
});

test('node added, node deleted, key changed: peers follow', { skip }, async () => {
  const n4 = await makeNode(4, { register: true });
  startAgent(n4);
  const members = () => [1, 2, 3, 4].filter((i) => nodes.has(i)).map((i) => nodes.get(i)!);
  await waitFor(() => meshFormed(members()), 20_000, 'four-node mesh', 200);
  await waitFor(() => ping(n4, nodes.get(1)!), 10_000, 'pod 4 -> pod 1');

  // Deleted: its key leaves every other node's device.
  const k4 = pubOf(n4)!;
  await stopAgent(n4);
  sim.api.deleteNode(n4.name);
  await waitFor(
    async () => {
      for (const i of [1, 2, 3]) if ((await wgPeers(nodes.get(i)!)).includes(k4)) return false;
      return true;
    },
    10_000,
    'peer of the deleted node removed',
  );

  // Key changed (key file lost): the new key is published and every peer switches to it.
  const n3 = nodes.get(3)!;
  const old = pubOf(n3)!;
  await stopAgent(n3);
  rmSync(n3.keyFile);
  startAgent(n3);
  await waitFor(() => pubOf(n3) !== old && pubOf(n3) !== undefined, 10_000, 'new key published');
  await waitFor(
    () => meshFormed([1, 2, 3].map((i) => nodes.get(i)!)),
    10_000,
    'mesh with the new key',
  );
  for (const i of [1, 2]) assert.equal((await wgPeers(nodes.get(i)!)).includes(old), false);
  await waitFor(() => ping(nodes.get(1)!, n3), 10_000, 'pod 1 -> pod 3 after the key change');
});

test('API server outage: traffic keeps flowing and the agents recover', { skip }, async () => {
  const [n1, n2, n3] = [1, 2, 3].map((i) => nodes.get(i)!) as [SimNode, SimNode, SimNode];
  await sim.api.stop();
  try {
    await sleep(1500);
    assert.equal(await ping(n1, n2, 3), true, 'data plane up while the API is down');
    assert.equal(await ping(n2, n3, 3), true);
  } finally {
    await sim.api.start();
  }
  // Recovery: a change made after the outage reaches the agents.
  const n5 = await makeNode(5, { register: true });
  startAgent(n5);
  await waitFor(() => meshFormed([n1, n2, n3, n5]), 20_000, 'node added after the outage joins');
  await waitFor(() => ping(n5, n1), 10_000, 'pod 5 -> pod 1');
  await stopAgent(n5);
  sim.api.deleteNode(n5.name);
  await lab.tryExec(n5.ns, 'ip', ['link', 'del', n5.ifname]);
});

test(
  'node reboot: daemon, device and routing gone; the persisted key brings the mesh back',
  { skip },
  async () => {
    const n1 = nodes.get(1)!;
    const others = [2, 3].map((i) => nodes.get(i)!);
    const key = pubOf(n1);
    const otherRv = others.map(
      (o) => (sim.api.getNode(o.name)!.metadata as { resourceVersion: string }).resourceVersion,
    );
    await stopAgent(n1);
    // "Reboot": the device (and with it the daemon), the rules and the table disappear.
    await lab.exec(n1.ns, 'ip', ['link', 'del', n1.ifname]);
    await lab.tryExec(n1.ns, 'ip', ['rule', 'del', 'priority', '100']);
    await lab.tryExec(n1.ns, 'ip', ['route', 'flush', 'table', TABLE]);
    assert.equal(await ping(n1, others[0]!), false, 'no path while rebooted');
    startAgent(n1);
    await waitFor(() => ping(n1, others[0]!), 15_000, 'pod 1 -> pod 2 after reboot');
    await waitFor(() => ping(n1, others[1]!), 10_000, 'pod 1 -> pod 3 after reboot');
    assert.equal(pubOf(n1), key, 'same key after reboot');
    assert.match(n1.agent!.output(), /loaded key/);
    assert.match(n1.agent!.output(), /started the daemon/);
    others.forEach((o, idx) => {
      const rv = (sim.api.getNode(o.name)!.metadata as { resourceVersion: string }).resourceVersion;
      assert.equal(rv, otherRv[idx], `${o.name} did not change`);
    });
  },
);

test(
  '--host-encryption: node-to-node traffic encrypted, API server port to the control plane exempt',
  { skip },
  async () => {
    const [n1, n3] = [nodes.get(1)!, nodes.get(3)!];
    sim.api.patchNode(n3.name, {
      metadata: { labels: { 'node-role.kubernetes.io/control-plane': '' } },
    });
    for (const n of [n1, n3]) {
      await stopAgent(n);
      startAgent(n, ['--host-encryption']);
    }
    await waitFor(
      async () => (await lab.exec(n1.ns, 'ip', ['route', 'get', n3.ip])).stdout.includes(n1.ifname),
      10_000,
      'node route through the tunnel',
    );
    await waitFor(
      async () => (await lab.exec(n1.ns, 'ip', ['rule', 'show'])).stdout.includes('dport 6443'),
      10_000,
      'exemption rule',
    );
    const server = lab.spawn(n3.ns, 'ncat', ['-l', '-k', n3.ip, '6443', '-c', 'echo pong']);
    const cap = spawnCapture(`icmp or tcp port 6443`);
    try {
      await sleep(300);
      await waitFor(
        async () => (await lab.tryExec(n1.ns, 'ping', ['-c', '1', '-W', '1', n3.ip])).code === 0,
        10_000,
        'node 1 -> node 3',
      );
      let reply = '';
      await waitFor(
        async () => {
          reply = // --recv-only: closing our side early must not race the server's reply.
            (await lab.tryExec(n1.ns, 'ncat', ['--recv-only', '-w', '2', n3.ip, '6443'])).stdout;
          return reply.includes('pong');
        },
        10_000,
        'TCP 6443 node 1 -> control-plane node 3',
      );
      await sleep(200);
    } finally {
      await cap.stop();
      await server.stop(500);
    }
    const lines = cap.lines();
    assert.equal(
      lines.filter((l) => /ICMP/.test(l)).length,
      0,
      `node ICMP went through the tunnel:\n${lines.join('\n')}`,
    );
    assert.ok(
      lines.some((l) => l.includes(`${n1.ip}.`) && l.includes(`${n3.ip}.6443`)),
      `6443 in clear:\n${lines.join('\n')}`,
    );
    for (const n of [n1, n3]) {
      await stopAgent(n);
      startAgent(n);
    }
    await waitFor(
      async () => !(await lab.exec(n1.ns, 'ip', ['rule', 'show'])).stdout.includes('dport 6443'),
      10_000,
      'exemptions removed',
    );
    await waitFor(
      async () =>
        !(await lab.exec(n1.ns, 'ip', ['route', 'get', n3.ip])).stdout.includes(n1.ifname),
      10_000,
      'node routes removed',
    );
  },
);

test(
  'in-cluster credentials over HTTPS: a revoked token is replaced in the file and the agent recovers',
  { skip },
  async () => {
    const n1 = nodes.get(1)!;
    await stopAgent(n1);
    // As a pod: KUBERNETES_SERVICE_HOST/PORT, token and ca.crt from the service-account dir.
    startAgent(n1, [], { inCluster: true });
    await waitFor(
      async () =>
        (await lab.tryExec(n1.ns, 'curl', ['-sf', 'http://127.0.0.1:9586/readyz'])).code === 0,
      10_000,
      'in-cluster agent ready',
    );
    assert.match(n1.agent!.output(), /reattached/);
    // The old token is revoked before kubelet writes the new one: requests fail with 401 until
    // the file changes, then the agent must use the new token without a restart.
    const fresh = `rotated-${Date.now()}`;
    const old = [...sim.api.tokens];
    sim.api.tokens.clear();
    sim.api.tokens.add(fresh);
    const denied = sim.api.unauthorized;
    sim.api.dropConnections();
    await waitFor(
      () => sim.api.unauthorized > denied,
      10_000,
      'requests with the old token refused',
    );
    sim.rotateToken(fresh);
    // A change only the API can tell: an admin strips our key annotation; the agent republishes.
    const key = pubOf(n1);
    sim.api.patchNode(n1.name, {
      metadata: { annotations: { 'wireguard-ts.io/public-key': null } },
    });
    await waitFor(() => pubOf(n1) === key, 15_000, 'key republished with the rotated token');
    const last = sim.api.requests.at(-1)!;
    assert.equal(last.token, fresh);
    assert.equal(await ping(n1, nodes.get(2)!), true);
    // The other agents' kubeconfig still holds the first token.
    for (const t of old) sim.api.tokens.add(t);
    await stopAgent(n1);
    startAgent(n1);
  },
);

test(
  '--route-source workload-ips: pod /32s as allowed IPs and routes, one pod at a time',
  { skip },
  async () => {
    const members = [1, 2, 3].map((i) => nodes.get(i)!);
    // The pods the fake cluster runs: each pod namespace's address, plus a host-network pod
    // (its node's IP) that must be ignored.
    for (const n of members) {
      sim.api.addPod({ name: `web-${n.i}`, nodeName: n.name, ips: [n.podIp] });
      sim.api.addPod({ name: `hostnet-${n.i}`, nodeName: n.name, ips: [n.ip], hostNetwork: true });
    }
    for (const n of members) {
      await stopAgent(n);
      startAgent(n, ['--route-source', 'workload-ips']);
    }
    const [n1, n2, n3] = members as [SimNode, SimNode, SimNode];
    const allowed = async (from: SimNode, to: SimNode) => {
      const out = (await lab.exec(from.ns, 'wg', ['show', from.ifname, 'allowed-ips'])).stdout;
      const line = out.split('\n').find((l) => l.startsWith(pubOf(to)!)) ?? '';
      return line
        .split(/\s+/)
        .slice(1)
        .filter((x) => x)
        .sort();
    };
    await waitFor(
      async () => (await allowed(n1, n2)).join(',') === `${n2.podIp}/32`,
      15_000,
      'node1 gives node2 its pod /32 only',
    );
    await waitFor(
      async () => new RegExp(`^${escapeRe(n2.podIp)} dev `, 'm').test(await sim.table(n1, TABLE)),
      10_000,
      'route to the pod /32',
    );
    const table = await sim.table(n1, TABLE);
    assert.doesNotMatch(table, /10\.244\.2\.0\/24/, 'no pod CIDR routes in this mode');
    assert.doesNotMatch(table, new RegExp(escapeRe(n1.podIp)), 'local pods stay out');
    assert.doesNotMatch(table, /throw/);
    await waitFor(() => ping(n1, n2), 10_000, 'pod 1 -> pod 2 over /32 routes');
    await waitFor(() => ping(n2, n3), 10_000, 'pod 2 -> pod 3 over /32 routes');

    // A second pod on node 2: one more allowed IP and one more route everywhere.
    const extra = '10.244.2.3';
    await lab.exec(n2.pod, 'ip', ['addr', 'add', `${extra}/24`, 'dev', `${lab.name('q2')}`]);
    sim.api.addPod({ name: 'web-2b', nodeName: n2.name, ips: [extra] });
    for (const n of [n1, n3]) {
      await waitFor(
        async () =>
          (await allowed(n, n2)).join(',') === [`${extra}/32`, `${n2.podIp}/32`].sort().join(','),
        10_000,
        `${n.name} adds the new pod`,
      );
    }
    await waitFor(
      async () => (await lab.tryExec(n1.pod, 'ping', ['-c', '1', '-W', '1', extra])).code === 0,
      10_000,
      'the new pod is reachable',
    );
    sim.api.deletePod('web-2b');
    for (const n of [n1, n3]) {
      await waitFor(
        async () => (await allowed(n, n2)).join(',') === `${n2.podIp}/32`,
        10_000,
        `${n.name} drops the deleted pod`,
      );
      await waitFor(
        async () => !(await sim.table(n, TABLE)).includes(extra),
        10_000,
        `${n.name} drops the route to the deleted pod`,
      );
    }
    // wireguard-ts (odd nodes) takes one removal line; wireguard-go 0.0.20220316 refuses it and
    // the agent falls back to replacing that peer's list.
    assert.doesNotMatch(n1.agent!.output(), /refused allowed_ip removal/);
    if (daemonFor(2) === 'wireguard-go') {
      sim.api.addPod({ name: 'web-1b', nodeName: n1.name, ips: ['10.244.1.3'] });
      await waitFor(async () => (await allowed(n2, n1)).length === 2, 10_000, 'node2 adds');
      sim.api.deletePod('web-1b');
      await waitFor(async () => (await allowed(n2, n1)).length === 1, 10_000, 'node2 removes');
      assert.match(n2.agent!.output(), /refused allowed_ip removal/);
    }
    for (const n of members) {
      await stopAgent(n);
      startAgent(n);
    }
    await waitFor(() => ping(n1, n2), 15_000, 'back to pod CIDRs');
  },
);

test(
  'a Node copying a peer key or announcing a slice of our pod CIDR captures nothing',
  { skip },
  async () => {
    const [n1, n2, n0] = [nodes.get(1)!, nodes.get(2)!, nodes.get(0)!];
    const scrape = async () =>
      (await lab.exec(n1.ns, 'curl', ['-sf', 'http://127.0.0.1:9586/metrics'])).stdout;
    // node0 (newer, no agent) publishes node2's key: node2 stays node1's peer at its own address.
    sim.api.patchNode(n0.name, {
      metadata: {
        annotations: { 'wireguard-ts.io/public-key': pubOf(n2)!, 'wireguard-ts.io/port': '51820' },
      },
    });
    try {
      await waitFor(
        async () =>
          /wireguard_ts_agent_refused_nodes\{reason="duplicate_key"\} 1/.test(await scrape()),
        10_000,
        'copy refused',
      );
      const ep = (await lab.exec(n1.ns, 'wg', ['show', n1.ifname, 'endpoints'])).stdout;
      assert.match(ep, new RegExp(`${escapeRe(pubOf(n2)!)}\\s+${escapeRe(n2.ip)}:51820`));
      assert.equal(await ping(n1, n2), true, 'the victim stays meshed');
      // A fresh key and a /25 of node1's /24: refused by every node, routed by none.
      const rogue = Buffer.alloc(32, 7).toString('base64');
      sim.api.patchNode(n0.name, {
        metadata: { annotations: { 'wireguard-ts.io/public-key': rogue } },
        spec: { podCIDR: '10.244.1.0/25', podCIDRs: ['10.244.1.0/25'] },
      });
      await waitFor(
        async () =>
          /wireguard_ts_agent_refused_nodes\{reason="overlaps_own"\} 1/.test(await scrape()),
        10_000,
        'overlap refused on node1',
      );
      for (const n of [n1, n2, nodes.get(3)!]) {
        assert.doesNotMatch(await sim.table(n, TABLE), /10\.244\.1\.0\/25/, `${n.name} table`);
        assert.equal((await wgPeers(n)).includes(rogue), false, `${n.name} peers`);
      }
      assert.equal(await ping(n2, n1), true, 'pod 2 -> pod 1 not captured');
      assert.match(n1.agent!.output(), /node0: overlaps_own/);
    } finally {
      sim.api.patchNode(n0.name, {
        metadata: {
          annotations: { 'wireguard-ts.io/public-key': null, 'wireguard-ts.io/port': null },
        },
        spec: { podCIDR: '10.244.0.0/24', podCIDRs: ['10.244.0.0/24'] },
      });
    }
  },
);

test('--cleanup removes routes, rules, the device and the annotations', { skip }, async () => {
  const n2 = nodes.get(2)!;
  await stopAgent(n2);
  const r = await lab.tryExec(n2.ns, process.execPath, [
    MAIN,
    '--cleanup',
    '--kubeconfig',
    sim.kubeconfig,
    '--node-name',
    n2.name,
    '--interface',
    n2.ifname,
    '--key-file',
    n2.keyFile,
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(pubOf(n2), undefined);
  assert.equal((await lab.tryExec(n2.ns, 'ip', ['link', 'show', n2.ifname])).code !== 0, true);
  assert.doesNotMatch((await lab.exec(n2.ns, 'ip', ['rule', 'show'])).stdout, /lookup 51820/);
  assert.equal((await lab.exec(n2.ns, 'ip', ['route', 'show', 'table', TABLE])).stdout.trim(), '');
  // The others drop it as a peer: it is keyless now.
  await waitFor(
    async () => (await wgPeers(nodes.get(1)!)).length === 1,
    10_000,
    'node2 removed from node1',
  );
});
