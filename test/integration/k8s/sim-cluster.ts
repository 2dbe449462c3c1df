/**
 * A simulated cluster for the agent's integration tests: a bridge in the root namespace (the
 * underlay, which also carries the test API server), and per node a namespace with a "pod"
 * namespace behind a veth (this kernel has no dummy links). Nodes run `wireguard-ts k8s` from
 * dist/ against the test API server; daemons alternate between bin/wireguard-ts (odd nodes) and
 * wireguard-go (even nodes) unless WG_TS_K8S_DAEMON names one command for all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, type LabProcess, type Netns } from '../../../src/lab/lab.js';
import { FakeApiServer } from './fake-apiserver.js';
import { caSkipReason, makeTestTls } from './test-ca.js';

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const MAIN = join(ROOT, 'dist/src/control/k8s/main.js');
export const KEY_ANNOTATION = 'wireguard-ts.io/public-key';
const TS_DAEMON = join(ROOT, 'bin/wireguard-ts');

export const daemonFor = (i: number): string =>
  process.env['WG_TS_K8S_DAEMON'] ?? (i % 2 === 1 ? TS_DAEMON : 'wireguard-go');

function onPath(tool: string): boolean {
  if (tool.includes('/')) return existsSync(tool);
  return (process.env['PATH'] ?? '').split(':').some((d) => existsSync(join(d, tool)));
}

/** Why the simulated cluster cannot run here, or undefined when it can. */
export function simSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  if (!existsSync(join(ROOT, 'dist/src/cli.js'))) return 'dist/src/cli.js not built';
  for (const tool of ['ip', 'wg', 'tcpdump', 'ncat', 'curl', daemonFor(1), daemonFor(2)]) {
    if (!onPath(tool)) return `${tool} not installed`;
  }
  return caSkipReason();
}

export interface SimNode {
  readonly i: number;
  readonly name: string;
  readonly ns: Netns;
  readonly pod: Netns;
  /** Underlay address (the Node's InternalIP). */
  readonly ip: string;
  readonly podIp: string;
  /** The pod's IPv6 address, when the cluster is dual-stack. */
  readonly podIp6: string | undefined;
  readonly ifname: string;
  readonly keyFile: string;
  agent: LabProcess | null;
}

export interface SimOptions {
  /** Underlay family (the nodes' InternalIPs). */
  readonly underlay: 4 | 6;
  /** Give pods IPv6 addresses and Nodes an IPv6 pod CIDR too. */
  readonly dualStackPods: boolean;
}

export class SimCluster {
  readonly lab = new Lab('wgtk');
  /** The test API server: HTTPS with a CA made for the run, bearer token required. */
  api!: FakeApiServer;
  readonly nodes = new Map<number, SimNode>();
  private readonly sub = 100 + (process.pid % 150);
  private dir = '';
  kubeconfig = '';
  /** The in-cluster service-account directory (token, ca.crt, namespace) agents may use. */
  serviceAccountDir = '';

  constructor(private readonly opts: SimOptions) {}

  /** Replaces the service-account token as kubelet does (a new file renamed over the old). */
  rotateToken(token: string): void {
    const tmp = join(this.serviceAccountDir, '.token.new');
    writeFileSync(tmp, token);
    renameSync(tmp, join(this.serviceAccountDir, 'token'));
  }

  get bridge(): string {
    return this.lab.name('br');
  }

  private underlayIp(host: number): string {
    return this.opts.underlay === 4
      ? `198.18.${this.sub}.${host}`
      : `fdcb:${this.sub}::${host.toString(16)}`;
  }

  private get underlayLen(): number {
    return this.opts.underlay === 4 ? 24 : 64;
  }

  async setup(): Promise<void> {
    this.dir = this.lab.tmpdir();
    this.kubeconfig = join(this.dir, 'kubeconfig');
    const tlsDir = join(this.dir, 'tls');
    mkdirSync(tlsDir);
    const tls = makeTestTls(tlsDir, [this.underlayIp(254)]);
    const token = randomBytes(24).toString('base64url');
    this.api = new FakeApiServer({
      host: this.underlayIp(254),
      bookmarkIntervalMs: 1000,
      tls,
      token,
    });
    this.serviceAccountDir = join(this.dir, 'serviceaccount');
    mkdirSync(this.serviceAccountDir);
    writeFileSync(join(this.serviceAccountDir, 'ca.crt'), tls.ca);
    writeFileSync(join(this.serviceAccountDir, 'token'), token);
    writeFileSync(join(this.serviceAccountDir, 'namespace'), 'wireguard-ts');
    const br = this.bridge;
    // A fixed address: a bridge without one takes the lowest MAC among its ports, so adding a
    // node could change it and leave every node's ARP entry for the API server pointing nowhere
    // for up to 45 s (REACHABLE is never re-probed).
    const mac = ['02', ...[...randomBytes(5)].map((b) => b.toString(16).padStart(2, '0'))].join(
      ':',
    );
    await this.lab.exec(null, 'ip', ['link', 'add', br, 'address', mac, 'type', 'bridge']);
    this.lab.defer(`bridge ${br}`, async () => {
      await this.lab.tryExec(null, 'ip', ['link', 'del', br]);
    });
    await this.lab.addr(null, br, `${this.underlayIp(254)}/${this.underlayLen}`);
    await this.lab.exec(null, 'ip', ['link', 'set', br, 'up']);
    await this.api.start();
    this.lab.defer('api server', () => this.api.stop());
    this.api.writeKubeconfig(this.kubeconfig);
  }

  async addNode(i: number, opts: { register: boolean }): Promise<SimNode> {
    const { lab } = this;
    const ns = await lab.netns(`n${i}`);
    const pod = await lab.netns(`p${i}`);
    const up = await lab.veth(null, ns, { names: [lab.name(`u${i}`), lab.name(`e${i}`)] });
    await lab.exec(null, 'ip', ['link', 'set', up.a, 'master', this.bridge]);
    const ip = this.underlayIp(10 + i);
    await lab.addr(ns, up.b, `${ip}/${this.underlayLen}`);
    const pv = await lab.veth(ns, pod, { names: [lab.name(`c${i}`), lab.name(`q${i}`)] });
    await lab.addr(ns, pv.a, `10.244.${i}.1/24`);
    await lab.addr(pod, pv.b, `10.244.${i}.2/24`);
    await lab.exec(pod, 'ip', ['route', 'add', 'default', 'via', `10.244.${i}.1`]);
    await lab.exec(ns, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    const podCidrs = [`10.244.${i}.0/24`];
    let podIp6: string | undefined;
    if (this.opts.dualStackPods) {
      await lab.addr(ns, pv.a, `fd10:244:${i}::1/64`);
      await lab.addr(pod, pv.b, `fd10:244:${i}::2/64`);
      await lab.exec(pod, 'ip', ['-6', 'route', 'add', 'default', 'via', `fd10:244:${i}::1`]);
      await lab.exec(ns, 'sysctl', ['-qw', 'net.ipv6.conf.all.forwarding=1']);
      podCidrs.push(`fd10:244:${i}::/64`);
      podIp6 = `fd10:244:${i}::2`;
    }
    const n: SimNode = {
      i,
      name: `node${i}`,
      ns,
      pod,
      ip,
      podIp: `10.244.${i}.2`,
      podIp6,
      ifname: lab.name(`w${i}`),
      keyFile: join(this.dir, `node${i}`, 'private.key'),
      agent: null,
    };
    this.nodes.set(i, n);
    if (opts.register) this.api.addNode({ name: n.name, internalIp: ip, podCidrs });
    return n;
  }

  node(i: number): SimNode {
    const n = this.nodes.get(i);
    if (!n) throw new Error(`no node ${i}`);
    return n;
  }

  /**
   * Starts the agent on `n`, with the kubeconfig, or `inCluster` as a pod would: no kubeconfig,
   * KUBERNETES_SERVICE_HOST/PORT and the service-account directory.
   */
  startAgent(n: SimNode, extra: string[] = [], o: { inCluster?: boolean } = {}): LabProcess {
    const creds = o.inCluster
      ? ['--service-account-dir', this.serviceAccountDir]
      : ['--kubeconfig', this.kubeconfig];
    const args = [
      MAIN,
      ...[...creds, '--node-name', n.name, '--interface', n.ifname],
      ...['--key-file', n.keyFile, '--metrics-addr', '127.0.0.1:9586', '--log-level', 'debug'],
      // Short resync, relist and backoff, so recoveries take seconds in the tests.
      ...['--resync', '2', '--relist-silence', '6', '--backoff-max', '1', '--watch-timeout', '20'],
      ...extra,
    ];
    const env: NodeJS.ProcessEnv = { ...process.env, WG_TS_DAEMON: daemonFor(n.i) };
    delete env.KUBERNETES_SERVICE_HOST;
    delete env.KUBERNETES_SERVICE_PORT;
    if (o.inCluster) {
      env.KUBERNETES_SERVICE_HOST = this.api.listenHost;
      env.KUBERNETES_SERVICE_PORT = String(this.api.listenPort);
    }
    const p = this.lab.spawn(n.ns, process.execPath, args, { env });
    n.agent = p;
    return p;
  }

  async stopAgent(n: SimNode): Promise<void> {
    await n.agent?.stop(3000);
    n.agent = null;
  }

  async wgPeers(n: SimNode): Promise<string[]> {
    const r = await this.lab.tryExec(n.ns, 'wg', ['show', n.ifname, 'peers']);
    return r.code === 0 ? r.stdout.split('\n').filter((l) => l) : [];
  }

  pubOf(n: SimNode): string | undefined {
    return this.api.annotations(n.name)[KEY_ANNOTATION];
  }

  /** Every member has a peer for every other member, with the keys they published. */
  async meshFormed(members: SimNode[]): Promise<boolean> {
    for (const n of members) {
      const want = members.filter((m) => m !== n).map((m) => this.pubOf(m));
      if (want.some((k) => !k)) return false;
      const have = await this.wgPeers(n);
      if (have.length !== want.length || want.some((k) => !have.includes(k!))) return false;
    }
    return true;
  }

  async ping(
    from: SimNode,
    to: SimNode,
    opts: { count?: number; v6?: boolean } = {},
  ): Promise<boolean> {
    const dst = opts.v6 ? to.podIp6 : to.podIp;
    if (!dst) throw new Error(`${to.name} has no IPv6 pod address`);
    const args = ['-c', String(opts.count ?? 1), '-i', '0.2', '-W', '1', dst];
    const r = await this.lab.tryExec(from.pod, 'ping', opts.v6 ? ['-6', ...args] : args);
    return r.code === 0;
  }

  /** `ip route show table T` in a node (empty when the table does not exist). */
  async table(n: SimNode, table: string, family: 4 | 6 = 4): Promise<string> {
    const r = await this.lab.tryExec(n.ns, 'ip', [`-${family}`, 'route', 'show', 'table', table]);
    return r.code === 0 ? r.stdout : '';
  }

  agentLog(): string {
    return [...this.nodes.values()]
      .map((n) => `--- ${n.name}\n${n.agent?.output().slice(-3000) ?? '(no agent)'}`)
      .join('\n');
  }

  /** tcpdump on the underlay bridge; stop it with `stop()` before reading `lines()`. */
  capture(filter: string): {
    proc: ChildProcess;
    lines: () => string[];
    stop: () => Promise<void>;
  } {
    const proc = spawn('tcpdump', ['-i', this.bridge, '-nn', '-l', '-q', filter], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    this.lab.defer('tcpdump', () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    });
    return {
      proc,
      lines: () => out.split('\n').filter((l) => l.trim()),
      stop: async () => {
        proc.kill('SIGINT');
        await exited;
      },
    };
  }

  async dispose(): Promise<void> {
    for (const n of this.nodes.values()) await this.stopAgent(n);
    // The daemons live in the node namespaces; the lab ends them with their namespaces.
    await this.lab.dispose();
  }
}
