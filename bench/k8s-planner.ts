/**
 * The Kubernetes agent at cluster scale: 500 Nodes x 110 Pods (55,000 pod /32s) with
 * --route-source workload-ips. It runs the real Agent (informers, planner, peer diff, UAPI
 * client, routing) against an in-memory API that hands it the lists as JSON text, as a server
 * would, then feeds pod watch events one at a time.
 *   cold start: agent CPU (this process; `ip` children apart) from start to the first complete
 *     reconcile (every peer and allowed IP configured, every route in the table);
 *   per pod change: wall time from the watch event to the end of the reconcile that wrote it
 *     (UAPI set done, route in the table), and the UAPI lines and route commands it took.
 * As root the data plane is real: a wireguard-ts daemon and the routing table in a network
 * namespace made for the run (the benchmark re-runs itself inside it). Without root, or with
 * --model, a model device and table stand in (planner and diff cost only).
 * Usage: node dist/bench/k8s-planner.js [--nodes N] [--pods-per-node N] [--changes N] [--model]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent } from '../src/control/k8s/agent.js';
import { ensureDaemon, UapiBackend, type WgBackend } from '../src/control/k8s/backend.js';
import type {
  KubeApi,
  KubeNode,
  KubePod,
  MergePatch,
  NodeList,
  ObjectList,
  WatchEvent,
  WatchOptions,
} from '../src/control/k8s/kube-types.js';
import {
  ANNOTATION_PORT,
  ANNOTATION_PUBLIC_KEY,
  type MeshPlan,
} from '../src/control/k8s/mesh-plan.js';
import type { NodeKey } from '../src/control/k8s/node-key.js';
import { generatePrivateKey, publicKey as publicKeyOf } from '../src/noise/keys.js';
import { parseAgentOptions } from '../src/control/k8s/options.js';
import {
  desiredRoutes,
  routeCommands,
  Routing,
  type RoutingConfig,
  type TableRoute,
} from '../src/control/k8s/routing.js';
import {
  newPeerInfo,
  serializeSet,
  type UapiDeviceInfo,
  type UapiSetOp,
} from '../src/control/uapi.js';
import { Lab } from '../src/lab/lab.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '500' },
    'pods-per-node': { type: 'string', default: '110' },
    changes: { type: 'string', default: '20' },
    model: { type: 'boolean', default: false },
    inner: { type: 'string' },
  },
});
const NODES = Number(values.nodes);
const PODS = Number(values['pods-per-node']);
const CHANGES = Number(values.changes);

const b64 = (k: Uint8Array) => Buffer.from(k).toString('base64');
const ipOf = (n: number) => `10.${64 + (n >> 8)}.${n & 255}`;
// Pod p of node n: 10.128.0.0/9, node-major, as an IPAM handing out addresses would.
const podIp = (n: number, p: number) => {
  const i = n * 256 + p;
  return `10.${128 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
};

class QueueApi implements KubeApi {
  private readonly nodesJson: string;
  private podsJson: string;
  private readonly waiting: Array<(ev: WatchEvent<KubePod>) => void> = [];
  private readonly backlog: WatchEvent<KubePod>[] = [];
  constructor(
    private readonly nodes: KubeNode[],
    pods: KubePod[],
  ) {
    this.nodesJson = JSON.stringify({ items: nodes, metadata: { resourceVersion: '1' } });
    this.podsJson = JSON.stringify({ items: pods, metadata: { resourceVersion: '1' } });
  }
  getNode(name: string): Promise<KubeNode> {
    return Promise.resolve(this.nodes.find((n) => n.metadata.name === name)!);
  }
  listNodes(): Promise<NodeList> {
    const l = JSON.parse(this.nodesJson) as { items: KubeNode[] };
    return Promise.resolve({ items: l.items, resourceVersion: '1' });
  }
  async *watchNodes(opts: WatchOptions): AsyncIterable<WatchEvent> {
    await new Promise<void>((r) => opts.signal.addEventListener('abort', () => r()));
  }
  patchNodeStatus(_name: string, _patch: MergePatch): Promise<KubeNode> {
    return Promise.resolve(this.nodes[0]!);
  }
  listPods(): Promise<ObjectList<KubePod>> {
    const l = JSON.parse(this.podsJson) as { items: KubePod[] };
    this.podsJson = ''; // listed once: free the text
    return Promise.resolve({ items: l.items, resourceVersion: '1' });
  }
  async *watchPods(opts: WatchOptions): AsyncIterable<WatchEvent<KubePod>> {
    let aborted = false;
    opts.signal.addEventListener('abort', () => {
      aborted = true;
      for (const w of this.waiting.splice(0))
        w({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '1' } } });
    });
    while (!aborted) {
      const ev =
        this.backlog.shift() ??
        (await new Promise<WatchEvent<KubePod>>((r) => this.waiting.push(r)));
      if (aborted) return;
      // Through JSON, as a watch line would come.
      yield JSON.parse(JSON.stringify(ev)) as WatchEvent<KubePod>;
    }
  }
  push(ev: WatchEvent<KubePod>): void {
    const w = this.waiting.shift();
    if (w) w(ev);
    else this.backlog.push(ev);
  }
}

/** A device that keeps what UAPI sets would leave, through the UAPI text (model mode). */
class ModelBackend implements WgBackend {
  readonly kind = 'userspace';
  private dev: UapiDeviceInfo = { privateKey: null, listenPort: 0, fwmark: 0, peers: [] };
  lines = 0;
  get(): Promise<UapiDeviceInfo> {
    return Promise.resolve(this.dev);
  }
  live(): Promise<boolean> {
    return Promise.resolve(true);
  }
  set(ops: readonly UapiSetOp[]): Promise<void> {
    this.lines += serializeSet(ops).split('\n').length;
    const peers = new Map(
      this.dev.peers.map((p) => [b64(p.publicKey), { ...p, allowedIps: [...p.allowedIps] }]),
    );
    let cur: ReturnType<typeof peers.get>;
    for (const op of ops) {
      if (op.key === 'private_key') this.dev = { ...this.dev, privateKey: op.value };
      else if (op.key === 'listen_port') this.dev = { ...this.dev, listenPort: op.value };
      else if (op.key === 'fwmark') this.dev = { ...this.dev, fwmark: op.value };
      else if (op.key === 'public_key') {
        cur = peers.get(b64(op.value));
        if (!cur) {
          cur = newPeerInfo(op.value);
          peers.set(b64(op.value), cur);
        }
      } else if (op.key === 'remove' && cur) peers.delete(b64(cur.publicKey));
      else if (op.key === 'endpoint' && cur) cur.endpoint = op.value;
      else if (op.key === 'replace_allowed_ips' && cur) cur.allowedIps = [];
      else if (op.key === 'allowed_ip' && cur) {
        if (op.remove)
          cur.allowedIps = cur.allowedIps.filter((p) => p.bytes.join() !== op.value.bytes.join());
        else cur.allowedIps.push(op.value);
      }
    }
    this.dev = { ...this.dev, peers: [...peers.values()] };
    return Promise.resolve();
  }
}

/** The routing table as Routing.apply diffs it, the `ip` commands counted, not run (model). */
class ModelRouting {
  private have: TableRoute[] = [];
  constructor(private readonly cfg: RoutingConfig) {}
  setupDevice(): Promise<void> {
    return Promise.resolve();
  }
  apply(plan: MeshPlan): Promise<{ added: number; removed: number }> {
    const want = desiredRoutes(plan, this.cfg);
    const { added, removed } = routeCommands(this.have, want, this.cfg);
    this.have = want;
    return Promise.resolve({ added, removed });
  }
  teardown(): Promise<void> {
    return Promise.resolve();
  }
}

function childCpuSeconds(): number {
  // cutime + cstime of /proc/self/stat: the `ip` commands this process waited for.
  const text = readFileSync('/proc/self/stat', 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}

async function inner(ifname: string | undefined): Promise<void> {
  const keys = Array.from({ length: NODES }, () => {
    const privateKey = generatePrivateKey();
    return { privateKey, publicKey: publicKeyOf(privateKey) };
  });
  const created = (n: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString();
  const nodes: KubeNode[] = keys.map((k, n) => ({
    metadata: {
      name: `node-${n}`,
      resourceVersion: '1',
      creationTimestamp: created(n),
      annotations: { [ANNOTATION_PUBLIC_KEY]: b64(k.publicKey), [ANNOTATION_PORT]: '51820' },
    },
    spec: { podCIDRs: [] },
    status: { addresses: [{ type: 'InternalIP', address: `${ipOf(n)}.1` }] },
  }));
  const pods: KubePod[] = [];
  for (let n = 0; n < NODES; n++) {
    for (let p = 0; p < PODS; p++) {
      pods.push({
        metadata: {
          name: `pod-${n}-${p}`,
          namespace: 'bench',
          resourceVersion: '1',
          creationTimestamp: created(n),
        },
        spec: { nodeName: `node-${n}` },
        status: { phase: 'Running', podIPs: [{ ip: podIp(n, p) }] },
      });
    }
  }
  const api = new QueueApi(nodes, pods);
  const dir = mkdtempSync(join(tmpdir(), 'wgts-k8s-bench-'));
  const opts = parseAgentOptions(
    [
      '--node-name',
      'node-0',
      '--route-source',
      'workload-ips',
      '--metrics-addr',
      '',
      '--key-file',
      join(dir, 'key'),
      '--resync',
      '3600',
      '--interface',
      ifname ?? 'wg-model',
    ],
    {},
  );
  const key: NodeKey = { ...keys[0]!, publicKeyBase64: b64(keys[0]!.publicKey), generated: false };
  const rcfg: RoutingConfig = {
    ifname: opts.interface,
    table: opts.table,
    fwmark: opts.fwmark,
    rulePriority: opts.rulePriority,
    hostEncryption: false,
    strict: false,
    exemptPorts: [],
  };
  let backend: WgBackend;
  let routing: Routing;
  if (ifname) {
    await ensureDaemon(ifname);
    backend = new UapiBackend(ifname);
    routing = new Routing(rcfg);
  } else {
    backend = new ModelBackend();
    routing = new ModelRouting(rcfg) as unknown as Routing;
  }
  // Each data-plane write, timed and sized.
  let setLines = 0;
  let routeChanges = 0;
  let lastApplied = 0;
  const realSet = backend.set.bind(backend);
  backend.set = async (ops) => {
    setLines += ops.filter((o) => o.key !== 'public_key').length;
    await realSet(ops);
  };
  const realApply = routing.apply.bind(routing);
  routing.apply = async (plan) => {
    const rc = await realApply(plan);
    routeChanges += rc.added + rc.removed;
    lastApplied = performance.now();
    return rc;
  };
  const agent = new Agent({
    api,
    backend,
    routing,
    key,
    opts,
    log: (l, m) => {
      if (l === 'error') process.stderr.write(`${m}\n`);
    },
  });

  const cpu0 = process.cpuUsage();
  const kids0 = childCpuSeconds();
  const t0 = performance.now();
  await agent.start();
  while (!(agent.ready() && agent.lastPlan?.peers.length === NODES - 1)) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const cold = process.cpuUsage(cpu0);
  const coldWall = (performance.now() - t0) / 1000;
  const coldKids = childCpuSeconds() - kids0;
  const coldLines = setLines;
  const coldRoutes = routeChanges;
  const dev = await backend.get();
  const allowed = dev.peers.reduce((s, p) => s + p.allowedIps.length, 0);
  const rss = process.memoryUsage().rss / 2 ** 20;

  // Pod churn: start a pod on a random node, then delete one; one event at a time.
  const lat: number[] = [];
  const cpuMs: number[] = [];
  const perChange: Array<{ lines: number; routes: number }> = [];
  for (let i = 0; i < CHANGES; i++) {
    const n = 1 + ((i * 7919) % (NODES - 1));
    const start = i % 2 === 0;
    const pod: KubePod = start
      ? {
          metadata: {
            name: `new-${i}`,
            namespace: 'bench',
            resourceVersion: String(2 + i),
            creationTimestamp: created(NODES + i),
          },
          spec: { nodeName: `node-${n}` },
          status: { phase: 'Running', podIPs: [{ ip: podIp(n, PODS + 1 + (i % 100)) }] },
        }
      : pods[n * PODS + (i % PODS)]!;
    const l0 = setLines;
    const r0 = routeChanges;
    const before = lastApplied;
    const t = performance.now();
    const c0 = process.cpuUsage();
    api.push({ type: start ? 'ADDED' : 'DELETED', object: pod });
    while (lastApplied === before || setLines === l0) await new Promise((r) => setTimeout(r, 2));
    lat.push(lastApplied - t);
    const c = process.cpuUsage(c0);
    cpuMs.push((c.user + c.system) / 1000);
    perChange.push({ lines: setLines - l0, routes: routeChanges - r0 });
    await new Promise((r) => setTimeout(r, 100));
  }
  await agent.stop();
  if (ifname) await routing.teardown();
  rmSync(dir, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  cpuMs.sort((a, b) => a - b);
  const result = {
    dataPlane: ifname ? 'wireguard-ts daemon + kernel routing table (netns)' : 'model',
    nodes: NODES,
    podsPerNode: PODS,
    prefixes: allowed,
    coldStart: {
      agentCpuS: +((cold.user + cold.system) / 1e6).toFixed(2),
      ipCommandsCpuS: +coldKids.toFixed(2),
      wallS: +coldWall.toFixed(2),
      uapiLines: coldLines,
      routeChanges: coldRoutes,
      agentRssMiB: Math.round(rss),
    },
    podChange: {
      count: lat.length,
      medianMs: +lat[Math.floor(lat.length / 2)]!.toFixed(1),
      maxMs: +lat.at(-1)!.toFixed(1),
      agentCpuMedianMs: +cpuMs[Math.floor(cpuMs.length / 2)]!.toFixed(1),
      agentCpuMaxMs: +cpuMs.at(-1)!.toFixed(1),
      loadAverage1m: +(readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '0'),
      uapiLinesEach: [...new Set(perChange.map((c) => c.lines))],
      routeChangesEach: [...new Set(perChange.map((c) => c.routes))],
    },
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

async function outer(): Promise<void> {
  const lab = new Lab('wgkb');
  try {
    const ns = await lab.netns('bench');
    const ifname = lab.name('w');
    const self = fileURLToPath(import.meta.url);
    const p = lab.spawn(ns, process.execPath, [
      self,
      '--inner',
      ifname,
      '--nodes',
      String(NODES),
      '--pods-per-node',
      String(PODS),
      '--changes',
      String(CHANGES),
    ]);
    const st = await p.exited;
    process.stdout.write(p.output());
    if (st.code !== 0) process.exitCode = 1;
    await lab.tryExec(ns, 'ip', ['link', 'del', ifname]);
  } finally {
    await lab.dispose();
  }
}

const root = process.getuid?.() === 0 && spawnSync('ip', ['netns', 'list']).status === 0;
if (values.inner !== undefined) await inner(values.inner);
else if (values.model || !root) await inner(undefined);
else await outer();
