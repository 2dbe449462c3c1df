/**
 * The node agent's control loop: publish this node's key, follow the Node informer, and bring
 * the WireGuard device (through its backend) and the host routing to the planned mesh. It never
 * owns the data plane: stopping the agent leaves daemon, peers and routes in place, so a restart
 * does not drop a packet; only `cleanup()` (uninstall) removes them.
 */
import { WgError } from '../../errors.js';
import type { WgBackend } from './backend.js';
import type { KubeApi, KubeNode } from './kube-types.js';
import { ANNOTATION_PORT, ANNOTATION_PUBLIC_KEY, planMesh, type MeshPlan } from './mesh-plan.js';
import type { AgentMetrics } from './metrics.js';
import { NodeInformer, PodInformer } from './node-informer.js';
import type { NodeKey } from './node-key.js';
import type { AgentOptions } from './options.js';
import { newPeerInfo, type UapiDeviceInfo } from '../uapi.js';
import { diffDevice, type AllowedIpUpdates, type DesiredDevice } from './peer-diff.js';
import { autoMtu, type Routing } from './routing.js';

export type LogFn = (level: 'error' | 'info' | 'debug', msg: string) => void;

export interface AgentDeps {
  readonly api: KubeApi;
  readonly backend: WgBackend;
  readonly routing: Routing;
  readonly key: NodeKey;
  readonly opts: AgentOptions;
  readonly log: LogFn;
  readonly metrics?: AgentMetrics;
  /** Restarts the device's daemon when it died (userspace backend, agent-managed daemon). */
  readonly restartDevice?: () => Promise<void>;
}

const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

/** What a device holds once `want` was applied (the fields diffDevice compares). */
function deviceOf(want: DesiredDevice): UapiDeviceInfo {
  return {
    privateKey: want.privateKey,
    listenPort: want.listenPort,
    fwmark: want.fwmark,
    peers: want.peers.map((p) => ({
      ...newPeerInfo(p.publicKey),
      endpoint: p.endpoint,
      allowedIps: [...p.allowedIps],
    })),
  };
}

export class Agent {
  readonly informer: NodeInformer;
  /** The Pod cache, with --route-source workload-ips. */
  readonly pods: PodInformer | null;
  lastPlan: MeshPlan | null = null;
  /** `append-remove` until the device refuses an `allowed_ip=-PREFIX` line. */
  private allowedIpUpdates: AllowedIpUpdates;
  private keyHolders: ReadonlyMap<string, string> = new Map();
  /**
   * The device as our last successful set left it: event-driven passes diff against it instead
   * of reading 55,000 allowed IPs back; the periodic resync (and any error) reads the device.
   */
  private device: UapiDeviceInfo | null = null;
  private fullResync = true;
  lastReconcileOk = false;
  private stopped = false;
  private reconciling: Promise<void> | null = null;
  private again = false;
  private debounce: NodeJS.Timeout | undefined;
  private resync: NodeJS.Timeout | undefined;
  private mtu = 0;
  private publishing: Promise<void> | null = null;
  private publishBackoffUntil = 0;
  private lastRefusedReport = '';

  constructor(private readonly d: AgentDeps) {
    const o = d.opts;
    const informerOpts = {
      watchTimeoutSeconds: o.watchTimeoutSeconds,
      silenceMs: o.silenceMs,
      backoffMinMs: Math.min(500, o.backoffMaxMs),
      backoffMaxMs: o.backoffMaxMs,
      log: d.log,
    };
    this.informer = new NodeInformer(d.api, informerOpts);
    this.informer.onChange(() => this.schedule(50));
    this.pods = o.routeSource === 'workload-ips' ? new PodInformer(d.api, informerOpts) : null;
    this.pods?.onChange(() => this.schedule(50));
    // `wg set` replaces lists; wireguard-go before 2025 knows no removal line, which the
    // first refusal tells us (see reconcileOnce).
    this.allowedIpUpdates = d.backend.kind === 'userspace' ? 'append-remove' : 'replace';
  }

  /** Both caches (Nodes, and Pods with workload-ips) filled once: only then may peers go. */
  get synced(): boolean {
    return this.informer.synced && (this.pods?.synced ?? true);
  }

  ready(): boolean {
    return this.synced && this.lastReconcileOk;
  }

  /** Configures the device's own settings at once (before the API answers), then follows Nodes. */
  async start(): Promise<void> {
    await this.configureDevice();
    this.informer.start();
    this.pods?.start();
    this.publish('start');
    const tick = () => {
      this.fullResync = true;
      this.schedule(0);
      this.resync = setTimeout(tick, this.d.opts.resyncMs);
    };
    this.resync = setTimeout(tick, this.d.opts.resyncMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.debounce);
    clearTimeout(this.resync);
    await this.informer.stop();
    await this.pods?.stop();
    await this.reconciling;
    await this.publishing;
  }

  private async configureDevice(): Promise<void> {
    const have = await this.d.backend.get();
    const diff = diffDevice(have, this.wantDevice(null), { removeUnknown: false });
    if (diff.ops.length) await this.d.backend.set(diff.ops);
  }

  private wantDevice(plan: MeshPlan | null): DesiredDevice {
    return {
      privateKey: this.d.key.privateKey,
      listenPort: this.d.opts.port,
      fwmark: this.d.opts.fwmark,
      peers: (plan?.peers ?? []).map((p) => ({
        publicKey: fromB64(p.publicKey),
        endpoint: p.endpoint,
        allowedIps: p.allowedIps,
      })),
    };
  }

  /** Publishes key and port on our Node (merge patch on nodes/status), retried with backoff. */
  private publish(why: string): void {
    if (this.publishing || this.stopped || Date.now() < this.publishBackoffUntil) return;
    const { api, key, opts, log } = this.d;
    this.publishing = (async () => {
      try {
        const node = await api.getNode(opts.nodeName);
        const ann = node.metadata.annotations ?? {};
        const published = ann[ANNOTATION_PUBLIC_KEY];
        if (published === key.publicKeyBase64 && ann[ANNOTATION_PORT] === String(opts.port)) return;
        if (published && published !== key.publicKeyBase64) {
          log(
            'info',
            `published key ${published} differs from ${key.publicKeyBase64} in ${opts.keyFile}: republishing`,
          );
        }
        await api.patchNodeStatus(opts.nodeName, {
          metadata: {
            annotations: {
              [ANNOTATION_PUBLIC_KEY]: key.publicKeyBase64,
              [ANNOTATION_PORT]: String(opts.port),
            },
          },
        });
        log(
          'info',
          `published public key ${key.publicKeyBase64} port ${opts.port} on node ${opts.nodeName} (${why})`,
        );
        this.publishBackoffUntil = 0;
      } catch (err) {
        this.d.metrics?.errors.inc({ stage: 'publish' });
        log('error', `publish key on node ${opts.nodeName}: ${(err as Error).message}`);
        this.publishBackoffUntil = Date.now() + Math.min(opts.backoffMaxMs, 2000);
        setTimeout(() => this.publish('retry'), Math.min(opts.backoffMaxMs, 2000) + 10).unref();
      } finally {
        this.publishing = null;
      }
    })();
  }

  /** Runs a reconcile soon; bursts of watch events collapse into one pass. */
  schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reconcile(), delayMs);
  }

  /** One pass; concurrent calls coalesce into one more pass after the running one. */
  async reconcile(): Promise<void> {
    if (this.reconciling) {
      this.again = true;
      return this.reconciling;
    }
    this.reconciling = this.reconcileOnce().finally(() => {
      this.reconciling = null;
      if (this.again && !this.stopped) {
        this.again = false;
        this.schedule(0);
      }
    });
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    if (!this.synced) return;
    const { opts, log, metrics, backend, routing } = this.d;
    const plan = planMesh(this.informer.nodes.values(), {
      selfName: opts.nodeName,
      selfPublicKey: this.d.key.publicKeyBase64,
      hostEncryption: opts.hostEncryption,
      routeSource: opts.routeSource,
      keyHolders: this.keyHolders,
      ...(this.pods ? { pods: this.pods.index } : {}),
    });
    this.lastPlan = plan;
    this.keyHolders = plan.keyHolders;
    this.reportRefused(plan);
    if (plan.self && !this.publishedOk(plan.self)) this.publish('annotation missing or stale');
    let stage = 'device';
    if (this.fullResync) {
      this.fullResync = false;
      this.device = null;
      if (typeof routing.invalidate === 'function') routing.invalidate();
    }
    const cached = this.device;
    this.device = null;
    try {
      let have = cached;
      if (!(await backend.live())) {
        have = null;
        // A new device comes up with the daemon's default MTU: set ours again once it is back.
        this.mtu = 0;
        if (typeof routing.invalidate === 'function') routing.invalidate();
        if (!this.d.restartDevice)
          throw new WgError('ERR_SYSTEM', `device ${opts.interface} is gone`);
        log('error', `device ${opts.interface} is gone: restarting it`);
        await this.d.restartDevice();
      }
      have ??= await backend.get();
      const want = this.wantDevice(plan);
      const diff = diffDevice(have, want, {
        removeUnknown: true,
        allowedIpUpdates: this.allowedIpUpdates,
      });
      if (diff.ops.length) {
        try {
          await backend.set(diff.ops);
        } catch (err) {
          const removes = diff.ops.some((op) => op.key === 'allowed_ip' && op.remove);
          if (!removes) throw err;
          // An older daemon: the peers that lost an address get their whole list instead.
          this.allowedIpUpdates = 'append';
          log(
            'info',
            `device refused allowed_ip removal (${(err as Error).message}): replacing lists`,
          );
          const again = diffDevice(await backend.get(), want, {
            removeUnknown: true,
            allowedIpUpdates: 'append',
          });
          await backend.set(again.ops);
        }
        log(
          'info',
          `peers: +${diff.added} ~${diff.updated} -${diff.removed} (${plan.peers.length} configured)`,
        );
      }
      this.device = deviceOf(want);
      stage = 'routing';
      const mtu = await this.mtuFor(plan);
      if (mtu !== this.mtu) {
        await routing.setupDevice(mtu);
        if (this.mtu !== 0 || mtu !== 0) log('info', `device ${opts.interface} up, mtu ${mtu}`);
        this.mtu = mtu;
      }
      const rc = await routing.apply(plan);
      if (rc.added || rc.removed) log('debug', `routes: +${rc.added} -${rc.removed}`);
      this.lastReconcileOk = true;
      metrics?.reconciles.inc({ result: 'ok' });
    } catch (err) {
      this.lastReconcileOk = false;
      metrics?.reconciles.inc({ result: 'error' });
      metrics?.errors.inc({ stage });
      log('error', `reconcile (${stage}): ${(err as Error).message}`);
      this.schedule(Math.min(opts.backoffMaxMs, 1000));
    }
    if (metrics) {
      metrics.peers.set({ state: 'peer' }, plan.peers.length);
      const refusedNames = new Set(plan.refused.map((r) => r.nodeName));
      metrics.peers.set(
        { state: 'keyless' },
        plan.keyless.filter((n) => !refusedNames.has(n.nodeName)).length,
      );
      metrics.peers.set({ state: 'refused' }, plan.refused.length);
      metrics.refused.reset();
      for (const r of plan.refused) metrics.refused.inc({ reason: r.reason });
    }
  }

  private publishedOk(self: KubeNode): boolean {
    const ann = self.metadata.annotations ?? {};
    return (
      ann[ANNOTATION_PUBLIC_KEY] === this.d.key.publicKeyBase64 &&
      ann[ANNOTATION_PORT] === String(this.d.opts.port)
    );
  }

  private reportRefused(plan: MeshPlan): void {
    const text = plan.refused.map((r) => `${r.nodeName}: ${r.reason} (${r.detail})`).join('; ');
    if (text !== this.lastRefusedReport && text) this.d.log('error', `refused nodes: ${text}`);
    this.lastRefusedReport = text;
  }

  private async mtuFor(plan: MeshPlan): Promise<number> {
    if (this.d.opts.mtu !== 'auto') return this.d.opts.mtu;
    return autoMtu(plan.selfIps);
  }

  /** Uninstall: routes and rules, our annotations, and the device (which ends its daemon). */
  async cleanup(): Promise<void> {
    const { api, opts, routing, log } = this.d;
    await routing.teardown();
    try {
      await api.patchNodeStatus(opts.nodeName, {
        metadata: { annotations: { [ANNOTATION_PUBLIC_KEY]: null, [ANNOTATION_PORT]: null } },
      });
      log('info', `removed annotations from node ${opts.nodeName}`);
    } catch (err) {
      log('error', `remove annotations from node ${opts.nodeName}: ${(err as Error).message}`);
    }
  }
}
