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
import { NodeInformer } from './node-informer.js';
import type { NodeKey } from './node-key.js';
import type { AgentOptions } from './options.js';
import { diffDevice } from './peer-diff.js';
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

export class Agent {
  readonly informer: NodeInformer;
  lastPlan: MeshPlan | null = null;
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
    this.informer = new NodeInformer(d.api, {
      watchTimeoutSeconds: o.watchTimeoutSeconds,
      silenceMs: o.silenceMs,
      backoffMinMs: Math.min(500, o.backoffMaxMs),
      backoffMaxMs: o.backoffMaxMs,
      log: d.log,
    });
    this.informer.onChange(() => this.schedule(50));
  }

  ready(): boolean {
    return this.informer.synced && this.lastReconcileOk;
  }

  /** Configures the device's own settings at once (before the API answers), then follows Nodes. */
  async start(): Promise<void> {
    await this.configureDevice();
    this.informer.start();
    this.publish('start');
    const tick = () => {
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
    await this.reconciling;
    await this.publishing;
  }

  private async configureDevice(): Promise<void> {
    const have = await this.d.backend.get();
    const diff = diffDevice(have, this.wantDevice(null), { removeUnknown: false });
    if (diff.ops.length) await this.d.backend.set(diff.ops);
  }

  private wantDevice(plan: MeshPlan | null) {
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
    if (!this.informer.synced) return;
    const { opts, log, metrics, backend, routing } = this.d;
    const plan = planMesh(this.informer.nodes.values(), {
      selfName: opts.nodeName,
      selfPublicKey: this.d.key.publicKeyBase64,
      hostEncryption: opts.hostEncryption,
    });
    this.lastPlan = plan;
    this.reportRefused(plan);
    if (plan.self && !this.publishedOk(plan.self)) this.publish('annotation missing or stale');
    let stage = 'device';
    try {
      if (!(await backend.live())) {
        // A new device comes up with the daemon's default MTU: set ours again once it is back.
        this.mtu = 0;
        if (!this.d.restartDevice)
          throw new WgError('ERR_SYSTEM', `device ${opts.interface} is gone`);
        log('error', `device ${opts.interface} is gone: restarting it`);
        await this.d.restartDevice();
      }
      const have = await backend.get();
      const diff = diffDevice(have, this.wantDevice(plan), { removeUnknown: this.informer.synced });
      if (diff.ops.length) {
        await backend.set(diff.ops);
        log(
          'info',
          `peers: +${diff.added} ~${diff.updated} -${diff.removed} (${plan.peers.length} configured)`,
        );
      }
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
      metrics.peers.set({ state: 'keyless' }, plan.keyless.length - plan.refused.length);
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
