// The agent's control loop with in-memory fakes (API, device, routing): it reattaches without
// touching existing peers, removes stale peers only after the initial sync, publishes and
// republishes its key, and follows key changes. No root, no network.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { formatEndpoint, parseEndpoint } from '../../src/tunnel/ip.js';
import { newPeerInfo, type UapiDeviceInfo, type UapiSetOp } from '../../src/control/uapi.js';
import { Agent } from '../../src/control/k8s/agent.js';
import { type WgBackend } from '../../src/control/k8s/backend.js';
import { daemonCommand } from '../../src/control/daemon-command.js';
import type {
  KubeApi,
  KubeNode,
  MergePatch,
  NodeList,
  WatchEvent,
  WatchOptions,
} from '../../src/control/k8s/kube-types.js';
import { ANNOTATION_PUBLIC_KEY } from '../../src/control/k8s/mesh-plan.js';
import { type NodeKey } from '../../src/control/k8s/node-key.js';
import { generatePrivateKey, publicKey as publicKeyOf } from '../../src/noise/keys.js';
import { parseAgentOptions } from '../../src/control/k8s/options.js';
import type { Routing } from '../../src/control/k8s/routing.js';
import { waitFor } from '../../src/lab/wait.js';

const b64 = (k: Uint8Array) => Buffer.from(k).toString('base64');

function nodeKey(): NodeKey {
  const privateKey = generatePrivateKey();
  const publicKey = publicKeyOf(privateKey);
  return { privateKey, publicKey, publicKeyBase64: b64(publicKey), generated: false };
}

function node(name: string, ip: string, cidr: string, key?: string): KubeNode {
  return {
    metadata: {
      name,
      resourceVersion: '1',
      annotations: key ? { [ANNOTATION_PUBLIC_KEY]: key, 'wireguard-ts.io/port': '51820' } : {},
    },
    spec: { podCIDRs: [cidr] },
    status: { addresses: [{ type: 'InternalIP', address: ip }] },
  };
}

class FakeApi implements KubeApi {
  nodes = new Map<string, KubeNode>();
  patches: Array<{ name: string; patch: MergePatch }> = [];
  private release: (() => void) | null = null;
  private gate: Promise<void>;
  constructor(gated: boolean) {
    this.gate = gated ? new Promise((r) => (this.release = r)) : Promise.resolve();
  }
  open(): void {
    this.release?.();
  }
  getNode(name: string): Promise<KubeNode> {
    const n = this.nodes.get(name);
    return n ? Promise.resolve(n) : Promise.reject(new Error('not found'));
  }
  async listNodes(): Promise<NodeList> {
    await this.gate;
    return { items: [...this.nodes.values()], resourceVersion: '1' };
  }
  async *watchNodes(opts: WatchOptions): AsyncIterable<WatchEvent> {
    // Nothing happens until the informer stops: changes in these tests come through relists.
    await new Promise<void>((resolve) => opts.signal.addEventListener('abort', () => resolve()));
    yield* [];
  }
  patchNodeStatus(name: string, patch: MergePatch): Promise<KubeNode> {
    this.patches.push({ name, patch });
    const cur = this.nodes.get(name)!;
    const ann = ((patch.metadata as MergePatch).annotations ?? {}) as Record<string, string>;
    const next = {
      ...cur,
      metadata: { ...cur.metadata, annotations: { ...cur.metadata.annotations, ...ann } },
    };
    this.nodes.set(name, next);
    return Promise.resolve(next);
  }
}

/** A device that applies UAPI operations the way a daemon does (enough for the agent). */
class FakeDevice implements WgBackend {
  readonly kind = 'userspace';
  state: UapiDeviceInfo = { privateKey: null, listenPort: 0, fwmark: 0, peers: [] };
  sets: UapiSetOp[][] = [];
  get(): Promise<UapiDeviceInfo> {
    return Promise.resolve(structuredClone(this.state));
  }
  live(): Promise<boolean> {
    return Promise.resolve(true);
  }
  set(ops: readonly UapiSetOp[]): Promise<void> {
    this.sets.push([...ops]);
    let peer: UapiDeviceInfo['peers'][number] | undefined;
    for (const op of ops) {
      switch (op.key) {
        case 'private_key':
          this.state.privateKey = op.value;
          break;
        case 'listen_port':
          this.state.listenPort = op.value;
          break;
        case 'fwmark':
          this.state.fwmark = op.value;
          break;
        case 'public_key':
          peer = this.state.peers.find((p) => b64(p.publicKey) === b64(op.value));
          if (!peer) {
            peer = newPeerInfo(op.value);
            this.state.peers.push(peer);
          }
          break;
        case 'remove':
          this.state.peers = this.state.peers.filter((p) => p !== peer);
          break;
        case 'endpoint':
          peer!.endpoint = op.value;
          break;
        case 'replace_allowed_ips':
          peer!.allowedIps = [];
          break;
        case 'allowed_ip':
          peer!.allowedIps.push(op.value);
          break;
        default:
          break;
      }
    }
    return Promise.resolve();
  }
  peerKeys(): string[] {
    return this.state.peers.map((p) => b64(p.publicKey)).sort();
  }
}

const routing = {
  setupDevice: () => Promise.resolve(),
  apply: () => Promise.resolve({ added: 0, removed: 0 }),
  teardown: () => Promise.resolve(),
} as unknown as Routing;

function makeAgent(api: FakeApi, dev: FakeDevice, key: NodeKey): Agent {
  const opts = parseAgentOptions(['--node-name', 'a', '--mtu', '1420', '--resync', '3600'], {});
  return new Agent({ api, backend: dev, routing, key, opts, log: () => undefined });
}

test('reattach: existing peers survive until the first list, then stale ones go', async () => {
  const key = nodeKey();
  const kb = nodeKey();
  const stale = nodeKey();
  const api = new FakeApi(true);
  api.nodes.set('a', node('a', '10.0.0.1', '10.244.1.0/24', key.publicKeyBase64));
  api.nodes.set('b', node('b', '10.0.0.2', '10.244.2.0/24', kb.publicKeyBase64));
  const dev = new FakeDevice();
  // The device as a previous agent left it: key, port, and two peers, one of a deleted Node.
  await dev.set([
    { key: 'private_key', value: key.privateKey },
    { key: 'listen_port', value: 51820 },
    { key: 'fwmark', value: 0x80000 },
    { key: 'public_key', value: kb.publicKey },
    { key: 'endpoint', value: parseEndpoint('10.0.0.2:51820') },
    { key: 'public_key', value: stale.publicKey },
    { key: 'endpoint', value: parseEndpoint('10.0.0.9:51820') },
  ]);
  dev.sets = [];
  const agent = makeAgent(api, dev, key);
  await agent.start();
  try {
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(dev.sets, [], 'nothing touched before the Node list arrived');
    assert.equal(dev.state.peers.length, 2);
    api.open();
    await waitFor(() => dev.state.peers.length === 1, 2000, 'stale peer removed after sync');
    assert.deepEqual(dev.peerKeys(), [kb.publicKeyBase64]);
    assert.equal(formatEndpoint(dev.state.peers[0]!.endpoint!), '10.0.0.2:51820');
    assert.equal(agent.ready(), true);
  } finally {
    await agent.stop();
  }
});

test('a fresh device gets key, port, fwmark before the API answers; the key is published', async () => {
  const key = nodeKey();
  const api = new FakeApi(true);
  api.nodes.set('a', node('a', '10.0.0.1', '10.244.1.0/24'));
  const dev = new FakeDevice();
  const agent = makeAgent(api, dev, key);
  await agent.start();
  try {
    assert.equal(b64(dev.state.privateKey!), b64(key.privateKey));
    assert.equal(dev.state.listenPort, 51820);
    assert.equal(dev.state.fwmark, 0x80000);
    await waitFor(() => api.patches.length === 1, 2000, 'key published');
    assert.deepEqual(api.patches[0], {
      name: 'a',
      patch: {
        metadata: {
          annotations: {
            [ANNOTATION_PUBLIC_KEY]: key.publicKeyBase64,
            'wireguard-ts.io/port': '51820',
          },
        },
      },
    });
    api.open();
    await waitFor(() => agent.ready(), 2000, 'ready');
    // Someone removes the annotation: the next pass notices and publishes again.
    const a = api.nodes.get('a')!;
    api.nodes.set('a', { ...a, metadata: { ...a.metadata, annotations: {} } });
    await (agent.informer as unknown as { list(): Promise<void> }).list();
    await waitFor(() => api.patches.length === 2, 2000, 'key republished');
  } finally {
    await agent.stop();
  }
});

test('an already published key is not patched again; a changed peer key replaces the peer', async () => {
  const key = nodeKey();
  const [k1, k2] = [nodeKey(), nodeKey()];
  const api = new FakeApi(false);
  api.nodes.set('a', node('a', '10.0.0.1', '10.244.1.0/24', key.publicKeyBase64));
  api.nodes.set('b', node('b', '10.0.0.2', '10.244.2.0/24', k1.publicKeyBase64));
  const dev = new FakeDevice();
  const agent = makeAgent(api, dev, key);
  await agent.start();
  try {
    await waitFor(() => dev.peerKeys().includes(k1.publicKeyBase64), 2000, 'peer b');
    api.nodes.set('b', node('b', '10.0.0.2', '10.244.2.0/24', k2.publicKeyBase64));
    // Feed the change the way a relist would.
    await (agent.informer as unknown as { list(): Promise<void> }).list();
    await waitFor(
      () => dev.peerKeys().join() === k2.publicKeyBase64,
      2000,
      'peer b with its new key',
    );
    assert.equal(api.patches.length, 0);
  } finally {
    await agent.stop();
  }
});

test('the default daemon command is this package launcher', () => {
  const { file, args } = daemonCommand({});
  assert.equal(file, process.execPath);
  assert.ok(existsSync(args[0]!), args[0]);
  assert.deepEqual(daemonCommand({ WG_TS_DAEMON: 'wireguard-go' }), {
    file: 'wireguard-go',
    args: [],
  });
  // Split on whitespace, for `up` and the agent alike (the agent once ran the whole string).
  assert.deepEqual(daemonCommand({ WG_TS_DAEMON: ' /usr/bin/wireguard-go  --foreground ' }), {
    file: '/usr/bin/wireguard-go',
    args: ['--foreground'],
  });
});
