/**
 * Prometheus metrics and probes for the agent. Per-peer series use Calico's names and labels
 * (`wireguard_latest_handshake_seconds`, `wireguard_bytes_sent`, `wireguard_bytes_rcvd`), read
 * from the device at scrape time; agent series count peers, reconciles and errors. `/healthz`
 * answers while the process runs; `/readyz` once the Node cache is synced and the last reconcile
 * succeeded.
 * Data-plane drops by reason come from the wireguard-ts daemon's `stats=1` UAPI operation as
 * `wireguard_ts_dropped_packets_total{reason}` (absent with the kernel backend).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { formatEndpoint } from '../../tunnel/ip.js';
import type { UapiDeviceInfo } from '../uapi.js';

export interface MetricsSource {
  readonly ifname: string;
  readonly hostname: string;
  readonly publicKey: string;
  readonly listenPort: number;
  readonly backend: 'userspace' | 'kernel';
  /** The device as it is now; throws when the daemon is gone. */
  device(): Promise<UapiDeviceInfo>;
  /** Drop counters (`drop_<reason>`) and gauges of a wireguard-ts daemon. */
  stats?(): Promise<Map<string, number>>;
  ready(): boolean;
}

export class AgentMetrics {
  readonly registry = new Registry();
  readonly peers: Gauge<'state'>;
  readonly refused: Gauge<'reason'>;
  readonly reconciles: Counter<'result'>;
  readonly errors: Counter<'stage'>;
  readonly watchEvents: Counter;
  private server: http.Server | null = null;

  constructor(private readonly src: MetricsSource) {
    const r = this.registry;
    const peerLabels = [
      'hostname',
      'iface',
      'listen_port',
      'public_key',
      'peer_key',
      'peer_endpoint',
    ] as const;
    // One read of the device per scrape fills the three per-peer families (prom-client collects
    // them concurrently, so all three await the same refresh). The counters are reset and
    // refilled, so they carry the daemon's absolute totals and vanish with the peer.
    let refreshing: Promise<void> | null = null;
    const fill = async () => {
      const dev = await src.device().catch(() => null);
      handshake.reset();
      sent.reset();
      rcvd.reset();
      for (const p of dev?.peers ?? []) {
        const labels = {
          hostname: src.hostname,
          iface: src.ifname,
          listen_port: src.listenPort,
          public_key: src.publicKey,
          peer_key: Buffer.from(p.publicKey).toString('base64'),
          peer_endpoint: p.endpoint ? formatEndpoint(p.endpoint) : '',
        };
        handshake.set(labels, Math.floor(p.lastHandshakeMs / 1000));
        sent.inc(labels, p.txBytes);
        rcvd.inc(labels, p.rxBytes);
      }
    };
    const refresh = (): Promise<void> => {
      refreshing ??= fill().finally(() => setImmediate(() => (refreshing = null)));
      return refreshing;
    };
    const handshake = new Gauge({
      name: 'wireguard_latest_handshake_seconds',
      help: 'Unix time of the latest handshake with the peer (0 = never)',
      labelNames: peerLabels,
      registers: [r],
      collect: refresh,
    });
    const sent = new Counter({
      name: 'wireguard_bytes_sent',
      help: 'Bytes sent to the peer',
      labelNames: peerLabels,
      registers: [r],
      collect: refresh,
    });
    const rcvd = new Counter({
      name: 'wireguard_bytes_rcvd',
      help: 'Bytes received from the peer',
      labelNames: peerLabels,
      registers: [r],
      collect: refresh,
    });
    new Gauge({
      name: 'wireguard_meta',
      help: 'Device information (always 1)',
      labelNames: ['hostname', 'iface', 'listen_port', 'public_key', 'backend'],
      registers: [r],
      collect() {
        this.reset();
        this.set(
          {
            hostname: src.hostname,
            iface: src.ifname,
            listen_port: src.listenPort,
            public_key: src.publicKey,
            backend: src.backend,
          },
          1,
        );
      },
    });
    if (src.stats) {
      const stats = src.stats.bind(src);
      new Counter({
        name: 'wireguard_ts_dropped_packets_total',
        help: 'Packets the data plane dropped, by reason',
        labelNames: ['reason'],
        registers: [r],
        async collect() {
          const m = await stats().catch(() => null);
          this.reset();
          for (const [k, v] of m ?? []) {
            if (k.startsWith('drop_')) this.inc({ reason: k.slice(5) }, v);
          }
        },
      });
    }
    this.peers = new Gauge({
      name: 'wireguard_ts_agent_peers',
      help: 'Nodes by mesh state: peer (configured), keyless, refused',
      labelNames: ['state'],
      registers: [r],
    });
    this.refused = new Gauge({
      name: 'wireguard_ts_agent_refused_nodes',
      help: 'Nodes refused as peers, by reason (duplicate_key, invalid_key, ...)',
      labelNames: ['reason'],
      registers: [r],
    });
    this.reconciles = new Counter({
      name: 'wireguard_ts_agent_reconciles_total',
      help: 'Reconcile passes, by result',
      labelNames: ['result'],
      registers: [r],
    });
    this.errors = new Counter({
      name: 'wireguard_ts_agent_errors_total',
      help: 'Errors, by stage (watch, publish, device, routing)',
      labelNames: ['stage'],
      registers: [r],
    });
    this.watchEvents = new Counter({
      name: 'wireguard_ts_agent_watch_events_total',
      help: 'Node watch events',
      registers: [r],
    });
  }

  /** Serves /metrics, /healthz, /readyz on `addr` (host:port; empty host = all). */
  async listen(addr: string): Promise<AddressInfo> {
    const colon = addr.lastIndexOf(':');
    const host = addr.slice(0, colon).replace(/^\[|\]$/g, '');
    const port = Number(addr.slice(colon + 1));
    const server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (path === '/healthz') {
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
      } else if (path === '/readyz') {
        const ok = this.src.ready();
        res
          .writeHead(ok ? 200 : 503, { 'Content-Type': 'text/plain' })
          .end(ok ? 'ok\n' : 'not ready\n');
      } else if (path === '/metrics') {
        this.registry.metrics().then(
          (text) => res.writeHead(200, { 'Content-Type': this.registry.contentType }).end(text),
          (err: Error) => res.writeHead(500).end(`${err.message}\n`),
        );
      } else {
        res.writeHead(404).end();
      }
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host || undefined, () => resolve());
    });
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
