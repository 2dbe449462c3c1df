// Agent metrics over HTTP: Calico's per-peer names and labels with the daemon's absolute totals,
// peers vanishing with the device's peers, agent counters, and the probes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseEndpoint } from '../../src/tunnel/ip.js';
import type { UapiDeviceInfo } from '../../src/control/uapi.js';
import { AgentMetrics } from '../../src/control/k8s/metrics.js';

const k = (n: number) => new Uint8Array(32).fill(n);
const b64 = (n: number) => Buffer.from(k(n)).toString('base64');

let device: UapiDeviceInfo = {
  privateKey: k(1),
  listenPort: 51820,
  fwmark: 0,
  peers: [
    {
      publicKey: k(2),
      presharedKey: null,
      endpoint: parseEndpoint('10.0.0.2:51820'),
      lastHandshakeMs: 1_700_000_000_500,
      txBytes: 1234,
      rxBytes: 5678,
      persistentKeepalive: 0,
      allowedIps: [],
      protocolVersion: 1,
    },
  ],
};
let ready = false;
let deviceDown = false;
const m = new AgentMetrics({
  ifname: 'wg-ts',
  hostname: 'node1',
  publicKey: b64(1),
  listenPort: 51820,
  backend: 'userspace',
  device: () => (deviceDown ? Promise.reject(new Error('daemon gone')) : Promise.resolve(device)),
  ready: () => ready,
});
let base = '';
before(async () => {
  const a = await m.listen('127.0.0.1:0');
  base = `http://127.0.0.1:${a.port}`;
});
after(() => m.close());

const get = async (path: string) => {
  const r = await fetch(base + path);
  return { status: r.status, text: await r.text() };
};

test('per-peer series carry Calico names, labels and the daemon totals', async () => {
  const { status, text } = await get('/metrics');
  assert.equal(status, 200);
  const labels = `hostname="node1",iface="wg-ts",listen_port="51820",public_key="${b64(1)}",peer_key="${b64(2)}",peer_endpoint="10.0.0.2:51820"`;
  assert.ok(text.includes(`wireguard_latest_handshake_seconds{${labels}} 1700000000`), text);
  assert.ok(text.includes(`wireguard_bytes_sent{${labels}} 1234`), text);
  assert.ok(text.includes(`wireguard_bytes_rcvd{${labels}} 5678`), text);
  assert.match(text, /# TYPE wireguard_bytes_sent counter/);
  assert.match(text, /wireguard_meta\{[^}]*backend="userspace"[^}]*\} 1/);
  // A second scrape reports the new absolute totals, not a sum.
  device = { ...device, peers: [{ ...device.peers[0]!, txBytes: 2000 }] };
  assert.ok((await get('/metrics')).text.includes(`wireguard_bytes_sent{${labels}} 2000`));
});

test('a removed peer, or a dead daemon, leaves no stale series', async () => {
  device = { ...device, peers: [] };
  assert.doesNotMatch((await get('/metrics')).text, /wireguard_bytes_sent\{/);
  deviceDown = true;
  const r = await get('/metrics');
  assert.equal(r.status, 200);
  assert.doesNotMatch(r.text, /wireguard_latest_handshake_seconds\{/);
  deviceDown = false;
});

test('agent counters and gauges', async () => {
  m.reconciles.inc({ result: 'ok' });
  m.errors.inc({ stage: 'publish' });
  m.peers.set({ state: 'peer' }, 2);
  const t = (await get('/metrics')).text;
  assert.match(t, /wireguard_ts_agent_reconciles_total\{result="ok"\} 1/);
  assert.match(t, /wireguard_ts_agent_errors_total\{stage="publish"\} 1/);
  assert.match(t, /wireguard_ts_agent_peers\{state="peer"\} 2/);
});

test('probes: healthz always, readyz only when ready', async () => {
  assert.equal((await get('/healthz')).status, 200);
  assert.equal((await get('/readyz')).status, 503);
  ready = true;
  assert.equal((await get('/readyz')).status, 200);
  assert.equal((await get('/nope')).status, 404);
});
