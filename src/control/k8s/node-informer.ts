/**
 * The Node list/watch loop: a cache of Nodes kept in step with the API server. It resumes a
 * watch from the last resourceVersion (bookmarks advance it), relists on 410 Gone, restarts after
 * any error with exponential backoff, and relists when nothing (not even a bookmark) arrives for
 * `silenceMs`, which catches half-open connections (client-node #364, #596). The cache survives
 * errors, so a flapping API server never makes peers disappear.
 */
import { KubeApiError, type KubeApi, type KubeNode } from './kube-types.js';

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

export class NodeInformer {
  readonly nodes = new Map<string, KubeNode>();
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
    private readonly api: KubeApi,
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
        this.opts.log('error', `watch nodes: ${(err as Error).message}; retry in ${backoff} ms`);
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, this.opts.backoffMaxMs);
      }
    }
  }

  private async list(): Promise<void> {
    const list = await this.api.listNodes();
    this.stats.lists++;
    const seen = new Set<string>();
    for (const n of list.items) {
      seen.add(n.metadata.name);
      this.nodes.set(n.metadata.name, n);
    }
    for (const name of [...this.nodes.keys()]) if (!seen.has(name)) this.nodes.delete(name);
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
      const events = this.api.watchNodes({
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
            this.nodes.set(ev.object.metadata.name, ev.object);
            break;
          case 'DELETED':
            this.nodes.delete(ev.object.metadata.name);
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
