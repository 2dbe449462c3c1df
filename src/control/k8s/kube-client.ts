/**
 * KubeApi over plain node:http/https. @kubernetes/client-node loads the credentials (kubeconfig
 * or in-cluster service account, with token refresh); the requests themselves are ours, so the
 * watch stream, its errors and its timeouts behave exactly as the watch loop expects.
 */
import http from 'node:http';
import https from 'node:https';
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import {
  KubeApiError,
  POD_FIELD_SELECTOR,
  type KubeApi,
  type KubeNode,
  type KubePod,
  type KubeStatus,
  type MergePatch,
  type NodeList,
  type ObjectList,
  type WatchEvent,
  type WatchOptions,
} from './kube-types.js';
import { TokenFile } from './token-file.js';

const REQUEST_TIMEOUT_MS = 15_000;
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * Loads a kubeconfig file, or, when `file` is undefined, the in-cluster service account: the
 * server from KUBERNETES_SERVICE_HOST/PORT, `ca.crt` and `token` from `saDir`.
 */
export function loadKubeConfig(
  file: string | undefined,
  saDir: string = SERVICE_ACCOUNT_DIR,
  env: NodeJS.ProcessEnv = process.env,
): KubeConfig {
  const kc = new KubeConfig();
  if (file) {
    kc.loadFromFile(file);
    return kc;
  }
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port)
    throw new KubeApiError(0, 'KUBERNETES_SERVICE_HOST/PORT not set (not in a cluster?)');
  // As client-node's loadFromCluster, but from any directory (tests, projected volumes).
  kc.loadFromClusterAndUser(
    {
      name: 'inCluster',
      server: `https://${isIPv6(host) ? `[${host}]` : host}:${port}`,
      caFile: join(saDir, 'ca.crt'),
      skipTLSVerify: false,
    },
    {
      name: 'inClusterUser',
      authProvider: { name: 'tokenFile', config: { tokenFile: join(saDir, 'token') } },
    },
  );
  return kc;
}

/** The token file of a kubeconfig user (in-cluster, or `tokenFile` in a kubeconfig). */
function tokenFileOf(kc: KubeConfig): string | undefined {
  const u = kc.getCurrentUser();
  const provider = u?.authProvider as { config?: Record<string, string> } | undefined;
  return provider?.config?.tokenFile;
}

interface Response {
  readonly status: number;
  readonly stream: http.IncomingMessage;
}

export class HttpKubeApi implements KubeApi {
  private readonly base: URL;
  /**
   * Bound service-account tokens rotate (kubelet rewrites the file): we read the file whenever
   * it changed, instead of client-node's copy refreshed once a minute, and re-read it on a 401.
   */
  private readonly token: TokenFile | undefined;

  constructor(private readonly kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new KubeApiError(0, 'kubeconfig has no current cluster');
    this.base = new URL(cluster.server);
    const tf = tokenFileOf(kc);
    this.token = tf ? new TokenFile(tf) : undefined;
  }

  private async request(
    method: string,
    path: string,
    body: string | undefined,
    headers: Record<string, string>,
    signal: AbortSignal | undefined,
    timeoutMs: number,
  ): Promise<Response> {
    const url = new URL(path, this.base);
    const opts: https.RequestOptions = {
      method,
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port,
      path: url.pathname + url.search,
      headers: { Accept: 'application/json', ...headers },
    };
    await this.kc.applyToHTTPSOptions(opts);
    if (this.token)
      (opts.headers as Record<string, string>).Authorization = `Bearer ${this.token.read()}`;
    const mod = url.protocol === 'https:' ? https : http;
    // client-node builds an https.Agent even for http:// servers (kubeconfigs for local test
    // servers); plain http must use the default agent.
    if (mod === http) delete opts.agent;
    return new Promise<Response>((resolve, reject) => {
      const req = mod.request({ ...opts, ...(signal ? { signal } : {}) }, (res) =>
        resolve({ status: res.statusCode ?? 0, stream: res }),
      );
      // An idle timeout: watches reset it with every chunk, so only a silent server trips it.
      req.setTimeout(timeoutMs, () =>
        req.destroy(new KubeApiError(0, `${method} ${path}: timeout`)),
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  private async json<T>(
    method: string,
    path: string,
    body?: string,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<T> {
    let res = await this.request(method, path, body, headers, signal, REQUEST_TIMEOUT_MS);
    if (res.status === 401 && this.token?.changedSinceRead()) {
      // Rotated between our stat and the server's check: one retry with the new token.
      res.stream.resume();
      res = await this.request(method, path, body, headers, signal, REQUEST_TIMEOUT_MS);
    }
    const text = await readAll(res.stream);
    if (res.status < 200 || res.status > 299)
      throw statusError(res.status, text, `${method} ${path}`);
    return JSON.parse(text) as T;
  }

  getNode(name: string): Promise<KubeNode> {
    return this.json<KubeNode>('GET', `/api/v1/nodes/${encodeURIComponent(name)}`);
  }

  async listNodes(signal?: AbortSignal): Promise<NodeList> {
    const list = await this.json<{ items?: KubeNode[]; metadata?: { resourceVersion?: string } }>(
      'GET',
      '/api/v1/nodes',
      undefined,
      {},
      signal,
    );
    return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  watchNodes(opts: WatchOptions): AsyncIterable<WatchEvent> {
    return this.watch<KubeNode>('/api/v1/nodes', {}, opts);
  }

  async listPods(signal?: AbortSignal): Promise<ObjectList<KubePod>> {
    const q = new URLSearchParams({ fieldSelector: POD_FIELD_SELECTOR });
    const list = await this.json<{ items?: KubePod[]; metadata?: { resourceVersion?: string } }>(
      'GET',
      `/api/v1/pods?${q.toString()}`,
      undefined,
      {},
      signal,
    );
    return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  watchPods(opts: WatchOptions): AsyncIterable<WatchEvent<KubePod>> {
    return this.watch<KubePod>('/api/v1/pods', { fieldSelector: POD_FIELD_SELECTOR }, opts);
  }

  private async *watch<T>(
    collection: string,
    extra: Record<string, string>,
    opts: WatchOptions,
  ): AsyncIterable<WatchEvent<T>> {
    const q = new URLSearchParams({
      ...extra,
      watch: 'true',
      allowWatchBookmarks: 'true',
      resourceVersion: opts.resourceVersion,
      timeoutSeconds: String(opts.timeoutSeconds),
    });
    const path = `${collection}?${q.toString()}`;
    const res = await this.request(
      'GET',
      path,
      undefined,
      {},
      opts.signal,
      (opts.timeoutSeconds + 30) * 1000,
    );
    if (res.status !== 200)
      throw statusError(res.status, await readAll(res.stream), `watch ${collection}`);
    res.stream.setEncoding('utf8');
    let buf = '';
    for await (const chunk of res.stream as AsyncIterable<string>) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) yield parseEvent<T>(line);
      }
    }
    // A final line without a newline is still an event.
    if (buf.trim()) yield parseEvent<T>(buf.trim());
  }

  patchNodeStatus(name: string, patch: MergePatch): Promise<KubeNode> {
    return this.json<KubeNode>(
      'PATCH',
      `/api/v1/nodes/${encodeURIComponent(name)}/status`,
      JSON.stringify(patch),
      { 'Content-Type': 'application/merge-patch+json' },
    );
  }
}

function parseEvent<T>(line: string): WatchEvent<T> {
  let ev: WatchEvent<T>;
  try {
    ev = JSON.parse(line) as WatchEvent<T>;
  } catch {
    // client-node silently drops unparsable lines; we would rather relist than miss an event.
    throw new KubeApiError(0, `watch: unparsable line (${line.length} bytes)`);
  }
  if (typeof ev?.type !== 'string' || typeof ev.object !== 'object') {
    throw new KubeApiError(0, 'watch: event without type or object');
  }
  return ev;
}

async function readAll(stream: http.IncomingMessage): Promise<string> {
  stream.setEncoding('utf8');
  let s = '';
  for await (const chunk of stream as AsyncIterable<string>) s += chunk;
  return s;
}

function statusError(code: number, text: string, what: string): KubeApiError {
  let msg = text.slice(0, 200);
  try {
    const st = JSON.parse(text) as KubeStatus;
    if (st.message) msg = st.message;
  } catch {
    // not a Status body: keep the raw text
  }
  return new KubeApiError(code, `${what}: HTTP ${code}: ${msg}`);
}
