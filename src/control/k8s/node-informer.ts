/**
 * The list/watch loop (Nodes, and Pods for --route-source workload-ips): a cache kept in step with the API server. It resumes a
 * watch from the last resourceVersion (bookmarks advance it), relists on 410 Gone, restarts after
 * any error with exponential backoff, and relists when nothing (not even a bookmark) arrives for
 * `silenceMs`, which catches half-open connections (client-node #364, #596). The cache survives
 * errors, so a flapping API server never makes peers disappear.
 */
import {
  KubeApiError,
  type KubeApi,
  type KubeNode,
  type KubePod,
  type ObjectList,
  type WatchEvent,
  type WatchOptions,
} from './kube-types.js';
import { PodIndex } from './pod-index.js';

/** What an informer follows: one kind's list and watch, and how its objects are keyed. */
export interface ObjectSource<
  T extends { readonly metadata: { readonly resourceVersion?: string } },
> {
  readonly kind: string;
  list(signal?: AbortSignal): Promise<ObjectList<T>>;
  watch(opts: WatchOptions): AsyncIterable<WatchEvent<T>>;
  key(obj: T): string;
  /** Objects for which this is false are left out of the cache (deleted if cached). */
  keep?(obj: T): boolean;
  /** What the cache holds of an object (a slimmer copy keeps 55,000 pods cheap). */
  slim?(obj: T): T;
}

export interface InformerOptions {
  /** Server-side watch timeout; the watch then resumes from the last resourceVersion. */
  readonly watchTimeoutSeconds: number;
  /** Relist when no event or bookmark arrived for this long. */
  readonly silenceMs: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  readonly log: (level: 'info' | 'error' | 'debug', msg: string) => void;
}

export const DEFAULT_INFORMER_OPTIONS: Omit<InformerOptions, 'log'> = {
  watchTimeoutSeconds: 300,
  silenceMs: 10 * 60_000,
  backoffMinMs: 500,
  backoffMaxMs: 30_000,
};

export interface InformerStats {
  lists: number;
  watches: number;
  errors: number;
  events: number;
}

export class ObjectInformer<
  T extends { readonly metadata: { readonly resourceVersion?: string } },
> {
  readonly objects = new Map<string, T>();
  /** True once the first list has filled the cache: before that, nothing may be garbage-collected. */
  synced = false;
  readonly stats: InformerStats = { lists: 0, watches: 0, errors: 0, events: 0 };
  private resourceVersion = '';
  private running = false;
  private abort: AbortController | null = null;
  private wake: (() => void) | null = null;
  private readonly listeners: Array<() => void> = [];
  private loop: Promise<void> | null = null;

  constructor(
    private readonly src: ObjectSource<T>,
    private readonly opts: InformerOptions,
  ) {}

  /** `cb` runs after every cache change (and after each successful list). */
  onChange(cb: () => void): void {
    this.listeners.push(cb);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort?.abort();
    this.wake?.();
    await this.loop;
  }

  private emit(): void {
    for (const cb of this.listeners) cb();
  }

  /** Caches (or, when filtered out, forgets) one object. */
  private put(obj: T): void {
    const k = this.src.key(obj);
    if (this.src.keep && !this.src.keep(obj)) return this.forget(k);
    const kept = this.src.slim ? this.src.slim(obj) : obj;
    this.objects.set(k, kept);
    this.stored(k, kept);
  }

  private forget(k: string): void {
    if (this.objects.delete(k)) this.removed(k);
  }

  /** Called for every object cached, so a subclass can keep an index in step. */
  protected stored(_key: string, _obj: T): void {}
  protected removed(_key: string): void {}

  private async run(): Promise<void> {
    let backoff = this.opts.backoffMinMs;
    let needList = true;
    while (this.running) {
      try {
        if (needList) {
          await this.list();
          needList = false;
        }
        const started = Date.now();
        const ended = await this.watchOnce();
        if (ended === 'silent') needList = true;
        if (ended === 'ended' && Date.now() - started < 1000) {
          // A server that closes watches at once must not turn this loop into a busy loop.
          await this.sleep(backoff);
          backoff = Math.min(backoff * 2, this.opts.backoffMaxMs);
        } else {
          backoff = this.opts.backoffMinMs;
        }
      } catch (err) {
        if (!this.running) break;
        this.stats.errors++;
        if (err instanceof KubeApiError && err.code === 410) {
          this.opts.log(
            'info',
            `watch: resourceVersion ${this.resourceVersion} expired, relisting`,
          );
          needList = true;
          continue;
        }
        this.opts.log(
          'error',
          `watch ${this.src.kind}: ${(err as Error).message}; retry in ${backoff} ms`,
        );
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, this.opts.backoffMaxMs);
      }
    }
  }

  private async list(): Promise<void> {
    const list = await this.src.list();
    this.stats.lists++;
    const seen = new Set<string>();
    for (const o of list.items) {
      seen.add(this.src.key(o));
      this.put(o);
    }
    for (const k of [...this.objects.keys()]) if (!seen.has(k)) this.forget(k);
    this.resourceVersion = list.resourceVersion;
    this.synced = true;
    this.emit();
  }

  /** Runs one watch until the server ends it ('ended') or the silence watchdog fires ('silent'). */
  private async watchOnce(): Promise<'ended' | 'silent'> {
    const abort = new AbortController();
    this.abort = abort;
    let silent = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        silent = true;
        abort.abort();
      }, this.opts.silenceMs);
    };
    arm();
    this.stats.watches++;
    try {
      const events = this.src.watch({
        resourceVersion: this.resourceVersion,
        timeoutSeconds: this.opts.watchTimeoutSeconds,
        signal: abort.signal,
      });
      for await (const ev of events) {
        arm();
        this.stats.events++;
        switch (ev.type) {
          case 'ADDED':
          case 'MODIFIED':
            this.put(ev.object);
            break;
          case 'DELETED':
            this.forget(this.src.key(ev.object));
            break;
          case 'BOOKMARK':
            this.resourceVersion = ev.object.metadata.resourceVersion;
            continue;
          case 'ERROR':
            throw new KubeApiError(ev.object.code ?? 0, `watch ERROR: ${ev.object.message ?? '?'}`);
        }
        const rv = ev.object.metadata.resourceVersion;
        if (rv) this.resourceVersion = rv;
        this.emit();
      }
      return 'ended';
    } catch (err) {
      if (silent) {
        this.opts.log('info', `watch: nothing for ${this.opts.silenceMs} ms, relisting`);
        return 'silent';
      }
      throw err;
    } finally {
      clearTimeout(timer);
      this.abort = null;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }
}

/** The Node cache, keyed by name. */
export class NodeInformer extends ObjectInformer<KubeNode> {
  constructor(api: KubeApi, opts: InformerOptions) {
    super(
      {
        kind: 'nodes',
        list: (signal) => api.listNodes(signal),
        watch: (o) => api.watchNodes(o),
        key: (n) => n.metadata.name,
      },
      opts,
    );
  }

  get nodes(): Map<string, KubeNode> {
    return this.objects;
  }
}

/** Host-network and finished pods carry no address of their own (see POD_FIELD_SELECTOR). */
export function podKept(p: KubePod): boolean {
  const phase = p.status?.phase;
  return !p.spec?.hostNetwork && phase !== 'Succeeded' && phase !== 'Failed';
}

/** The Pod cache for --route-source workload-ips, keyed by namespace/name, slimmed. */
export class PodInformer extends ObjectInformer<KubePod> {
  /** Pod addresses by node, updated with each event. */
  readonly index = new PodIndex();

  constructor(api: KubeApi, opts: InformerOptions) {
    if (!api.listPods || !api.watchPods)
      throw new KubeApiError(0, 'this API client cannot list pods');
    super(
      {
        kind: 'pods',
        list: (signal) => api.listPods!(signal),
        watch: (o) => api.watchPods!(o),
        key: (p) => `${p.metadata.namespace ?? ''}/${p.metadata.name}`,
        keep: podKept,
        slim: slimPod,
      },
      opts,
    );
  }

  get pods(): Map<string, KubePod> {
    return this.objects;
  }

  protected override stored(key: string, obj: KubePod): void {
    this.index.upsert(key, obj);
  }

  protected override removed(key: string): void {
    this.index.delete(key);
  }
}

function slimPod(p: KubePod): KubePod {
  const ips = p.status?.podIPs?.length
    ? p.status.podIPs.map((x) => ({ ip: x.ip }))
    : p.status?.podIP
      ? [{ ip: p.status.podIP }]
      : [];
  const md = p.metadata;
  return {
    metadata: {
      name: md.name,
      ...(md.namespace !== undefined ? { namespace: md.namespace } : {}),
      ...(md.resourceVersion !== undefined ? { resourceVersion: md.resourceVersion } : {}),
      ...(md.creationTimestamp !== undefined ? { creationTimestamp: md.creationTimestamp } : {}),
    },
    spec: p.spec?.nodeName !== undefined ? { nodeName: p.spec.nodeName } : {},
    status: { podIPs: ips },
  };
}
