/**
 * A loopback Kubernetes API server for Nodes and Pods, honest enough for `kubectl` and the
 * agent: discovery, list with resourceVersion, chunked NDJSON watches (from a resourceVersion,
 * with bookmarks, server timeouts, 410 Gone as HTTP status or as an ERROR event), Pod field
 * selectors (an object leaving the selector is a DELETED event, as the real server sends), JSON
 * merge patch on `nodes/{name}` and on the `nodes/{name}/status` subresource (which keeps spec),
 * HTTPS with a test CA and bearer tokens (401 without one it accepts), and failure toggles:
 * stop/start, dropped connections, silent stalls, lines split across chunks.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

export interface FakeNodeSpec {
  readonly name: string;
  readonly internalIp?: string | readonly string[];
  readonly podCidrs?: readonly string[];
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

export interface FakePodSpec {
  readonly name: string;
  readonly namespace?: string;
  readonly nodeName: string;
  readonly ips: readonly string[];
  readonly hostNetwork?: boolean;
  readonly phase?: string;
  /** RFC 3339; default now. */
  readonly created?: string;
}

type Resource = 'nodes' | 'pods';

interface LoggedEvent {
  readonly rv: number;
  readonly resource: Resource;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: Obj;
  /** The object before this event (MODIFIED), for field-selector transitions. */
  readonly previous?: Obj;
}

/** `a=b,c!=d` over dotted field paths, as the API server's field selectors. */
type FieldSelector = (o: Obj) => boolean;

function parseFieldSelector(text: string | null): FieldSelector {
  if (!text) return () => true;
  const terms = text.split(',').map((t) => {
    const m = /^([\w.]+)(!=|==|=)(.*)$/.exec(t.trim());
    if (!m) throw new Error(`bad field selector term "${t}"`);
    return { path: m[1]!.split('.'), neg: m[2] === '!=', value: m[3]! };
  });
  return (o) =>
    terms.every(({ path, neg, value }) => {
      let v: Json = o;
      for (const k of path)
        v = v && typeof v === 'object' && !Array.isArray(v) ? (v[k] ?? null) : null;
      // Unset booleans read as false, as the server's field label conversion does.
      const text =
        v === null
          ? path.join('.') === 'spec.hostNetwork'
            ? 'false'
            : ''
          : typeof v === 'object'
            ? JSON.stringify(v)
            : String(v);
      return (text === value) !== neg;
    });
}

export interface FakeTls {
  readonly key: string;
  readonly cert: string;
  /** The CA (PEM) clients should trust. */
  readonly ca: string;
}

interface Watcher {
  readonly res: http.ServerResponse;
  readonly resource: Resource;
  readonly selector: FieldSelector;
  rv: number;
  readonly bookmarks: boolean;
  timer?: NodeJS.Timeout;
  bookmarkTimer?: NodeJS.Timeout;
  /** Split writes go out in order, a few ms apart, so the client really sees partial lines. */
  queue: Promise<void>;
}

export interface FakeApiOptions {
  readonly host?: string;
  readonly port?: number;
  /** Send a BOOKMARK to bookmark-enabled watches this often (0 = never). */
  readonly bookmarkIntervalMs?: number;
  /** Serve HTTPS with this certificate. */
  readonly tls?: FakeTls;
  /** Accept only this bearer token (401 otherwise); none = no authentication. */
  readonly token?: string;
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: Json, patch: Json): Json {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Obj =
    target && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

const clone = <T>(o: T): T => JSON.parse(JSON.stringify(o)) as T;

export class FakeApiServer {
  private readonly nodes = new Map<string, Obj>();
  private readonly pods = new Map<string, Obj>();
  private readonly tls: FakeTls | undefined;
  /** Bearer tokens accepted now (empty = no authentication); tests rotate them. */
  readonly tokens = new Set<string>();
  /** Requests answered 401. */
  unauthorized = 0;
  private log: LoggedEvent[] = [];
  private rv = 100;
  /** Watches from a resourceVersion older than this get 410 Gone. */
  private oldestRv = 0;
  private server: http.Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly watchers = new Set<Watcher>();
  private port = 0;
  private host: string;
  /** Split every watch line into this many chunks (1 = whole lines). */
  splitChunks = 1;
  /** Report 410 as an ERROR event inside a 200 stream instead of an HTTP 410. */
  goneAsEvent = false;
  /** Hold watches open but never send anything (a half-open connection). */
  stalled = false;
  bookmarkIntervalMs: number;
  readonly requests: Array<{
    method: string;
    path: string;
    contentType?: string;
    token?: string;
  }> = [];

  constructor(opts: FakeApiOptions = {}) {
    this.host = opts.host ?? '127.0.0.1';
    this.port = opts.port ?? 0;
    this.bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 0;
    this.tls = opts.tls;
    if (opts.token) this.tokens.add(opts.token);
  }

  get url(): string {
    const h = this.host.includes(':') ? `[${this.host}]` : this.host;
    return `${this.tls ? 'https' : 'http'}://${h}:${this.port}`;
  }

  get listenHost(): string {
    return this.host;
  }

  get listenPort(): number {
    return this.port;
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Open watches. */
  get watching(): number {
    return this.watchers.size;
  }

  get running(): boolean {
    return this.server !== null;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res);
    const server = this.tls
      ? https.createServer({ key: this.tls.key, cert: this.tls.cert }, handler)
      : http.createServer(handler);
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and cuts every connection (an API server outage). */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    this.dropConnections();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  /** Resets every open connection, watches included. */
  dropConnections(): void {
    for (const w of this.watchers) {
      clearTimeout(w.timer);
      clearInterval(w.bookmarkTimer);
    }
    this.watchers.clear();
    for (const s of this.sockets) s.destroy();
  }

  /** Forgets the event log up to now: watches from an older resourceVersion get 410. */
  compact(): void {
    this.oldestRv = this.rv;
    this.log = [];
  }

  /** Writes a kubeconfig pointing at this server: its CA, and a token it accepts. */
  writeKubeconfig(file: string): void {
    const ca = this.tls
      ? `\n    certificate-authority-data: ${Buffer.from(this.tls.ca).toString('base64')}`
      : '';
    const token = [...this.tokens][0] ?? 'fake-token';
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: fake\n  cluster:\n    server: ${this.url}${ca}`,
        'users:',
        `- name: agent\n  user:\n    token: ${token}`,
        'contexts:',
        '- name: fake\n  context:\n    cluster: fake\n    user: agent',
        'current-context: fake',
        '',
      ].join('\n'),
    );
  }

  // --- the store -------------------------------------------------------------------------------

  getNode(name: string): Obj | undefined {
    const n = this.nodes.get(name);
    return n ? clone(n) : undefined;
  }

  annotations(name: string): Record<string, string> {
    const md = this.nodes.get(name)?.metadata as Obj | undefined;
    return clone((md?.annotations as Record<string, string> | undefined) ?? {});
  }

  addNode(spec: FakeNodeSpec): void {
    const ips =
      spec.internalIp === undefined
        ? []
        : typeof spec.internalIp === 'string'
          ? [spec.internalIp]
          : [...spec.internalIp];
    const podCidrs = [...(spec.podCidrs ?? [])];
    const node: Obj = {
      kind: 'Node',
      apiVersion: 'v1',
      metadata: {
        name: spec.name,
        uid: randomUUID(),
        creationTimestamp: new Date().toISOString(),
        labels: { 'kubernetes.io/hostname': spec.name, ...(spec.labels ?? {}) },
        annotations: { ...(spec.annotations ?? {}) },
      },
      spec: podCidrs.length ? { podCIDR: podCidrs[0]!, podCIDRs: podCidrs } : {},
      status: {
        addresses: [
          ...ips.map((a) => ({ type: 'InternalIP', address: a })),
          { type: 'Hostname', address: spec.name },
        ],
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    };
    this.commit(this.nodes.has(spec.name) ? 'MODIFIED' : 'ADDED', node);
  }

  addPod(spec: FakePodSpec): void {
    const ns = spec.namespace ?? 'default';
    const key = `${ns}/${spec.name}`;
    const pod: Obj = {
      kind: 'Pod',
      apiVersion: 'v1',
      metadata: {
        name: spec.name,
        namespace: ns,
        uid: randomUUID(),
        creationTimestamp: spec.created ?? new Date().toISOString(),
      },
      spec: { nodeName: spec.nodeName, ...(spec.hostNetwork ? { hostNetwork: true } : {}) },
      status: {
        phase: spec.phase ?? 'Running',
        ...(spec.ips.length ? { podIP: spec.ips[0]! } : {}),
        podIPs: spec.ips.map((ip) => ({ ip })),
      },
    };
    const prev = this.pods.get(key);
    this.commitObj('pods', key, prev ? 'MODIFIED' : 'ADDED', pod, prev);
  }

  deletePod(name: string, namespace = 'default'): void {
    const key = `${namespace}/${name}`;
    const cur = this.pods.get(key);
    if (!cur) return;
    this.pods.delete(key);
    this.rv++;
    const obj = clone(cur);
    (obj.metadata as Obj).resourceVersion = String(this.rv);
    this.record({ rv: this.rv, resource: 'pods', type: 'DELETED', object: obj });
  }

  /** Applies a merge patch to a Node as an admin would (`kubectl patch node`). */
  patchNode(name: string, patch: Json): void {
    const cur = this.nodes.get(name);
    if (!cur) throw new Error(`no node ${name}`);
    this.commit('MODIFIED', mergePatch(cur, patch) as Obj);
  }

  deleteNode(name: string): void {
    const cur = this.nodes.get(name);
    if (!cur) return;
    this.nodes.delete(name);
    this.rv++;
    const obj = clone(cur);
    (obj.metadata as Obj).resourceVersion = String(this.rv);
    this.record({ rv: this.rv, resource: 'nodes', type: 'DELETED', object: obj });
  }

  private commit(type: 'ADDED' | 'MODIFIED', node: Obj): void {
    const name = (node.metadata as Obj).name as string;
    this.commitObj('nodes', name, type, node, this.nodes.get(name));
  }

  private commitObj(
    resource: Resource,
    key: string,
    type: 'ADDED' | 'MODIFIED',
    obj: Obj,
    previous: Obj | undefined,
  ): void {
    this.rv++;
    (obj.metadata as Obj).resourceVersion = String(this.rv);
    (resource === 'nodes' ? this.nodes : this.pods).set(key, obj);
    this.record({
      rv: this.rv,
      resource,
      type,
      object: clone(obj),
      ...(previous ? { previous: clone(previous) } : {}),
    });
  }

  private record(ev: LoggedEvent): void {
    this.log.push(ev);
    for (const w of this.watchers) this.send(w, ev);
  }

  // --- HTTP ------------------------------------------------------------------------------------

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const ct = req.headers['content-type'];
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    this.requests.push({
      method: req.method ?? '',
      path: url.pathname + url.search,
      ...(ct ? { contentType: ct } : {}),
      ...(token ? { token } : {}),
    });
    if (this.tokens.size && !(token && this.tokens.has(token))) {
      this.unauthorized++;
      req.resume();
      return this.status(res, 401, 'Unauthorized', 'Unauthorized');
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      try {
        this.route(req.method ?? 'GET', url, body, ct ?? '', res);
      } catch (err) {
        this.status(res, 500, 'InternalError', (err as Error).message);
      }
    });
  }

  private json(res: http.ServerResponse, code: number, obj: Json): void {
    res.writeHead(code, { 'Content-Type': 'application/json' }).end(JSON.stringify(obj));
  }

  private status(res: http.ServerResponse, code: number, reason: string, message: string): void {
    this.json(res, code, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      code,
    });
  }

  private route(
    method: string,
    url: URL,
    body: string,
    ct: string,
    res: http.ServerResponse,
  ): void {
    const p = url.pathname.replace(/\/+$/, '');
    if (method === 'GET' && p === '/version') {
      return this.json(res, 200, {
        major: '1',
        minor: '32',
        gitVersion: 'v1.32.0-fake',
        platform: 'linux/amd64',
      });
    }
    if (method === 'GET' && p === '/api') {
      return this.json(res, 200, {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [
          { clientCIDR: '0.0.0.0/0', serverAddress: this.url.replace('http://', '') },
        ],
      });
    }
    if (method === 'GET' && p === '/apis') {
      return this.json(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups: [] });
    }
    if (method === 'GET' && p === '/api/v1') {
      return this.json(res, 200, {
        kind: 'APIResourceList',
        groupVersion: 'v1',
        resources: [
          {
            name: 'nodes',
            singularName: 'node',
            namespaced: false,
            kind: 'Node',
            verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
            shortNames: ['no'],
          },
          {
            name: 'nodes/status',
            singularName: '',
            namespaced: false,
            kind: 'Node',
            verbs: ['get', 'patch', 'update'],
          },
          {
            name: 'pods',
            singularName: 'pod',
            namespaced: true,
            kind: 'Pod',
            verbs: ['get', 'list', 'watch'],
            shortNames: ['po'],
          },
        ],
      });
    }
    if (method === 'GET' && p === '/api/v1/pods') {
      const sel = parseFieldSelector(url.searchParams.get('fieldSelector'));
      if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1')
        return this.watch(url, res, 'pods', sel);
      return this.json(res, 200, {
        kind: 'PodList',
        apiVersion: 'v1',
        metadata: { resourceVersion: String(this.rv) },
        items: [...this.pods.values()].filter(sel).map((o) => {
          const { kind: _k, apiVersion: _a, ...rest } = clone(o);
          return rest;
        }),
      });
    }
    const m = /^\/api\/v1\/nodes(?:\/([^/]+)(\/status)?)?$/.exec(p);
    if (!m)
      return this.status(
        res,
        404,
        'NotFound',
        `the server could not find the requested resource (${p})`,
      );
    const name = m[1] ? decodeURIComponent(m[1]) : undefined;
    const sub = Boolean(m[2]);
    if (!name && method === 'GET') {
      if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1')
        return this.watch(url, res, 'nodes', () => true);
      return this.json(res, 200, {
        kind: 'NodeList',
        apiVersion: 'v1',
        metadata: { resourceVersion: String(this.rv) },
        items: [...this.nodes.values()].map((n) => {
          const { kind: _k, apiVersion: _a, ...rest } = clone(n);
          return rest;
        }),
      });
    }
    if (!name) return this.status(res, 405, 'MethodNotAllowed', `${method} on the node collection`);
    const cur = this.nodes.get(name);
    if (!cur) return this.status(res, 404, 'NotFound', `nodes "${name}" not found`);
    if (method === 'GET') return this.json(res, 200, cur);
    if (method !== 'PATCH') return this.status(res, 405, 'MethodNotAllowed', method);
    if (!ct.startsWith('application/merge-patch+json')) {
      return this.status(
        res,
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json (got ${ct})`,
      );
    }
    let patch: Json;
    try {
      patch = JSON.parse(body) as Json;
    } catch {
      return this.status(res, 400, 'BadRequest', 'invalid JSON');
    }
    let next = mergePatch(clone(cur), patch) as Obj;
    // The status subresource ignores spec changes; the main resource ignores status changes.
    if (sub) next.spec = clone(cur.spec ?? {});
    else next.status = clone(cur.status ?? {});
    next = { ...next, kind: 'Node', apiVersion: 'v1' };
    (next.metadata as Obj).name = name;
    const want =
      (((patch as Obj)?.metadata as Obj | undefined)?.resourceVersion as string | undefined) ??
      undefined;
    if (want !== undefined && want !== (cur.metadata as Obj).resourceVersion) {
      return this.status(res, 409, 'Conflict', 'the object has been modified');
    }
    this.commit('MODIFIED', next);
    return this.json(res, 200, next);
  }

  private watch(
    url: URL,
    res: http.ServerResponse,
    resource: Resource,
    selector: FieldSelector,
  ): void {
    const rvText = url.searchParams.get('resourceVersion') ?? '';
    const fromRv = rvText === '' || rvText === '0' ? -1 : Number(rvText);
    const bookmarks = url.searchParams.get('allowWatchBookmarks') === 'true';
    const timeoutSeconds = Number(url.searchParams.get('timeoutSeconds') ?? '1800');
    if (fromRv >= 0 && fromRv < this.oldestRv) {
      const st = {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `too old resource version: ${fromRv} (${this.oldestRv})`,
        reason: 'Expired',
        code: 410,
      };
      if (!this.goneAsEvent) return this.json(res, 410, st);
      res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
      res.end(`${JSON.stringify({ type: 'ERROR', object: st })}\n`);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    res.flushHeaders();
    const w: Watcher = {
      res,
      resource,
      selector,
      rv: fromRv,
      bookmarks,
      queue: Promise.resolve(),
    };
    this.watchers.add(w);
    res.on('close', () => this.endWatch(w));
    if (fromRv < 0) {
      for (const n of (resource === 'nodes' ? this.nodes : this.pods).values())
        this.send(
          w,
          {
            rv: Number((n.metadata as Obj).resourceVersion),
            resource,
            type: 'ADDED',
            object: clone(n),
          },
          true,
        );
      w.rv = this.rv;
    } else {
      for (const ev of this.log) if (ev.rv > fromRv) this.send(w, ev);
    }
    w.timer = setTimeout(() => this.endWatch(w), timeoutSeconds * 1000);
    if (bookmarks && this.bookmarkIntervalMs > 0) {
      w.bookmarkTimer = setInterval(() => {
        if (this.stalled) return;
        this.writeLine(w, {
          type: 'BOOKMARK',
          object: {
            kind: resource === 'nodes' ? 'Node' : 'Pod',
            apiVersion: 'v1',
            metadata: { resourceVersion: String(this.rv) },
          },
        });
      }, this.bookmarkIntervalMs);
    }
  }

  private send(w: Watcher, ev: LoggedEvent, force = false): void {
    if (ev.resource !== w.resource) return;
    if (!force && ev.rv <= w.rv) return;
    if (this.stalled) return;
    w.rv = Math.max(w.rv, ev.rv);
    // With a field selector, an object entering it is ADDED and one leaving it DELETED.
    const now = w.selector(ev.object);
    const before = ev.previous ? w.selector(ev.previous) : false;
    let type = ev.type;
    if (type === 'MODIFIED' && now && !before) type = 'ADDED';
    else if (type === 'MODIFIED' && !now && before) type = 'DELETED';
    else if (!now && !(type === 'MODIFIED' && before)) return;
    this.writeLine(w, { type, object: ev.object });
  }

  private writeLine(w: Watcher, obj: Json): void {
    const line = `${JSON.stringify(obj)}\n`;
    if (this.splitChunks <= 1) {
      w.res.write(line);
      return;
    }
    // Separate writes on a chunked response become separate HTTP chunks: the client must join them.
    const size = Math.ceil(line.length / this.splitChunks);
    for (let i = 0; i < line.length; i += size) {
      const piece = line.slice(i, i + size);
      w.queue = w.queue.then(
        () =>
          new Promise<void>((resolve) =>
            setTimeout(() => {
              if (!w.res.writableEnded) w.res.write(piece);
              resolve();
            }, 3),
          ),
      );
    }
  }

  private endWatch(w: Watcher): void {
    if (!this.watchers.delete(w)) return;
    clearTimeout(w.timer);
    clearInterval(w.bookmarkTimer);
    void w.queue.then(() => w.res.end());
  }
}
