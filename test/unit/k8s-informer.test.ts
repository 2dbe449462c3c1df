// The Kubernetes side over real HTTP on loopback: our client and Node informer against the test
// API server (list, watch, lines split across chunks, 410 both ways, bookmarks, dropped
// connections, silence, outage), merge patch on nodes/status, and kubectl against the same
// server so the fake stays honest to a real client.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { FakeApiServer } from '../integration/k8s/fake-apiserver.js';
import { caSkipReason, makeTestTls } from '../integration/k8s/test-ca.js';

// The test API server is HTTPS with a CA made here, and wants a bearer token.
const tlsSkip = caSkipReason();
import { HttpKubeApi, loadKubeConfig } from '../../src/control/k8s/kube-client.js';
import { NodeInformer } from '../../src/control/k8s/node-informer.js';
import { KubeApiError } from '../../src/control/k8s/kube-types.js';
import { waitFor } from '../../src/lab/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'wgtk-api-'));
const kubeconfig = join(dir, 'kubeconfig');
let srv: FakeApiServer;
let api: HttpKubeApi;
const informers: NodeInformer[] = [];

before(async () => {
  if (tlsSkip) return;
  srv = new FakeApiServer({
    bookmarkIntervalMs: 100,
    tls: makeTestTls(dir, ['127.0.0.1']),
    token: 'agent-token',
  });
  await srv.start();
  srv.writeKubeconfig(kubeconfig);
  api = new HttpKubeApi(loadKubeConfig(kubeconfig));
  srv.addNode({ name: 'n1', internalIp: '10.0.0.1', podCidrs: ['10.244.1.0/24'] });
  srv.addNode({ name: 'n2', internalIp: '10.0.0.2', podCidrs: ['10.244.2.0/24'] });
});
after(async () => {
  if (tlsSkip) return;
  for (const i of informers) await i.stop();
  await srv.stop();
  rmSync(dir, { recursive: true, force: true });
});

function informer(over: Partial<ConstructorParameters<typeof NodeInformer>[1]> = {}): NodeInformer {
  const inf = new NodeInformer(api, {
    watchTimeoutSeconds: 30,
    silenceMs: 60_000,
    backoffMinMs: 20,
    backoffMaxMs: 100,
    log: () => undefined,
    ...over,
  });
  informers.push(inf);
  inf.start();
  return inf;
}

const annotation = (inf: NodeInformer, node: string) =>
  inf.nodes.get(node)?.metadata.annotations?.x;

test(
  'list, then watch events in order, also when lines are split across chunks',
  { skip: tlsSkip },
  async () => {
    const inf = informer();
    await waitFor(() => inf.synced && inf.nodes.size === 2, 3000, 'initial list');
    srv.splitChunks = 7;
    try {
      srv.addNode({ name: 'n3', internalIp: '10.0.0.3' });
      srv.patchNode('n1', { metadata: { annotations: { x: 'one' } } });
      srv.deleteNode('n2');
      await waitFor(
        () => inf.nodes.has('n3') && !inf.nodes.has('n2') && annotation(inf, 'n1') === 'one',
        3000,
        'watch events',
      );
    } finally {
      srv.splitChunks = 1;
    }
    assert.equal(inf.stats.lists, 1, 'no relist needed');
    srv.addNode({ name: 'n2', internalIp: '10.0.0.2', podCidrs: ['10.244.2.0/24'] });
    srv.deleteNode('n3');
    await waitFor(() => inf.nodes.has('n2') && !inf.nodes.has('n3'), 3000, 'restore');
    await inf.stop();
  },
);

test(
  'a dropped connection resumes the watch from the last resourceVersion, without a relist',
  { skip: tlsSkip },
  async () => {
    const inf = informer();
    await waitFor(() => inf.synced, 3000, 'sync');
    // The watch must be open before it is cut (its TLS handshake follows the list).
    await waitFor(() => srv.watching > 0, 3000, 'watch open');
    srv.dropConnections();
    srv.patchNode('n1', { metadata: { annotations: { x: 'after-drop' } } });
    await waitFor(() => annotation(inf, 'n1') === 'after-drop', 3000, 'event after reconnect');
    assert.equal(inf.stats.lists, 1);
    assert.ok(inf.stats.errors >= 1 || inf.stats.watches >= 2);
    await inf.stop();
  },
);

for (const asEvent of [false, true]) {
  test(
    `410 Gone (${asEvent ? 'ERROR event' : 'HTTP status'}) triggers a relist that also drops deleted nodes`,
    { skip: tlsSkip },
    async () => {
      const inf = informer();
      await waitFor(() => inf.synced, 3000, 'sync');
      srv.stalled = true; // the next events are lost to this watch...
      srv.addNode({ name: 'gone', internalIp: '10.0.0.9' });
      srv.deleteNode('gone');
      srv.addNode({ name: 'n4', internalIp: '10.0.0.4' });
      srv.stalled = false;
      srv.compact(); // ...and the log that could replay them is gone
      srv.goneAsEvent = asEvent;
      try {
        srv.dropConnections();
        await waitFor(() => inf.nodes.has('n4'), 3000, 'relisted n4');
        assert.equal(inf.stats.lists, 2);
        assert.equal(inf.nodes.has('gone'), false);
      } finally {
        srv.goneAsEvent = false;
        srv.deleteNode('n4');
      }
      await waitFor(() => !inf.nodes.has('n4'), 3000, 'n4 deleted');
      await inf.stop();
    },
  );
}

test(
  'bookmarks advance the resourceVersion, so a resume after compaction needs no relist',
  { skip: tlsSkip },
  async () => {
    const inf = informer();
    await waitFor(() => inf.synced, 3000, 'sync');
    srv.addNode({ name: 'n5', internalIp: '10.0.0.5' });
    srv.deleteNode('n5');
    const rv = Number(srv.resourceVersion);
    // Wait for a bookmark at the newest resourceVersion, then forget the log up to it.
    await waitFor(
      () => (inf as unknown as { resourceVersion: string }).resourceVersion === String(rv),
      3000,
      'bookmark',
    );
    srv.compact();
    srv.dropConnections();
    srv.patchNode('n1', { metadata: { annotations: { x: 'post-bookmark' } } });
    await waitFor(() => annotation(inf, 'n1') === 'post-bookmark', 3000, 'resumed');
    assert.equal(inf.stats.lists, 1, 'resumed from the bookmark, no 410');
    await inf.stop();
  },
);

test('silence (a stalled watch) triggers a relist', { skip: tlsSkip }, async () => {
  const inf = informer({ silenceMs: 300 });
  await waitFor(() => inf.synced, 3000, 'sync');
  srv.stalled = true;
  srv.patchNode('n1', { metadata: { annotations: { x: 'during-stall' } } });
  try {
    await waitFor(() => annotation(inf, 'n1') === 'during-stall', 3000, 'relist after silence');
    assert.ok(inf.stats.lists >= 2);
  } finally {
    srv.stalled = false;
  }
  await inf.stop();
});

test(
  'an API server outage keeps the cache, and the informer recovers when it returns',
  { skip: tlsSkip },
  async () => {
    const inf = informer();
    await waitFor(() => inf.synced, 3000, 'sync');
    const size = inf.nodes.size;
    await srv.stop();
    await waitFor(() => inf.stats.errors >= 2, 3000, 'errors while down');
    assert.equal(inf.nodes.size, size, 'cache kept during the outage');
    srv.patchNode('n1', { metadata: { annotations: { x: 'after-outage' } } });
    await srv.start();
    await waitFor(() => annotation(inf, 'n1') === 'after-outage', 5000, 'recovered');
    await inf.stop();
  },
);

test(
  'merge patch on nodes/status sets and removes annotations and keeps spec',
  { skip: tlsSkip },
  async () => {
    const out = await api.patchNodeStatus('n1', {
      metadata: {
        annotations: { 'wireguard-ts.io/public-key': 'k', 'wireguard-ts.io/port': '51820' },
      },
      spec: { podCIDR: '1.2.3.0/24' },
    });
    assert.equal(out.metadata.annotations?.['wireguard-ts.io/public-key'], 'k');
    assert.equal(out.spec?.podCIDR, '10.244.1.0/24', 'status subresource ignores spec');
    await api.patchNodeStatus('n1', {
      metadata: { annotations: { 'wireguard-ts.io/public-key': null } },
    });
    const n = await api.getNode('n1');
    assert.equal(n.metadata.annotations?.['wireguard-ts.io/public-key'], undefined);
    assert.equal(n.metadata.annotations?.['wireguard-ts.io/port'], '51820');
    const last = srv.requests.filter((r) => r.method === 'PATCH').at(-1)!;
    assert.equal(last.path, '/api/v1/nodes/n1/status');
    assert.equal(last.contentType, 'application/merge-patch+json');
    await assert.rejects(
      api.getNode('nope'),
      (e: unknown) => e instanceof KubeApiError && e.code === 404,
    );
  },
);

const run = promisify(execFile);
const kubectl = (...args: string[]) =>
  run('kubectl', ['--kubeconfig', kubeconfig, ...args], { timeout: 20_000 });

test(
  'kubectl: get nodes, patch --type=merge (also on status), get -w',
  { skip: tlsSkip },
  async (t) => {
    try {
      await run('kubectl', ['version', '--client'], { timeout: 10_000 });
    } catch {
      t.skip('kubectl not installed');
      return;
    }
    const got = await kubectl('get', 'nodes', '-o', 'json');
    const list = JSON.parse(got.stdout) as { items: Array<{ metadata: { name: string } }> };
    assert.deepEqual(list.items.map((i) => i.metadata.name).sort(), ['n1', 'n2']);
    const plain = await kubectl('get', 'nodes');
    assert.match(plain.stdout, /n1/);
    await kubectl(
      'patch',
      'node',
      'n2',
      '--type=merge',
      '-p',
      '{"metadata":{"annotations":{"k":"v"}}}',
    );
    assert.equal(srv.annotations('n2').k, 'v');
    await kubectl(
      'patch',
      'node',
      'n2',
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"metadata":{"annotations":{"k":null}}}',
    );
    assert.equal(srv.annotations('n2').k, undefined);

    const w = spawn(
      'kubectl',
      ['--kubeconfig', kubeconfig, 'get', 'nodes', '-w', '-o', 'name', '--request-timeout=0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    t.after(() => w.kill());
    let out = '';
    w.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor(() => out.includes('node/n1'), 10_000, 'kubectl initial list');
    srv.addNode({ name: 'n-kubectl', internalIp: '10.0.0.77' });
    await waitFor(() => out.includes('node/n-kubectl'), 10_000, 'kubectl saw the watch event');
    srv.deleteNode('n-kubectl');
  },
);

test(
  'https with a CA and a bearer token, as in-cluster config gives',
  { skip: tlsSkip },
  async (t) => {
    const key = join(dir, 'tls.key');
    const cert = join(dir, 'tls.crt');
    try {
      await run(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          key,
          '-out',
          cert,
          '-days',
          '1',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
        ],
        { timeout: 20_000 },
      );
    } catch {
      t.skip('openssl not available');
      return;
    }
    let auth: string | undefined;
    const server = https.createServer(
      { key: readFileSync(key), cert: readFileSync(cert) },
      (req, res) => {
        auth = req.headers.authorization;
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(
          JSON.stringify({ kind: 'NodeList', metadata: { resourceVersion: '7' }, items: [] }),
        );
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => server.close());
    const port = (server.address() as AddressInfo).port;
    const kc = new KubeConfig();
    kc.loadFromClusterAndUser(
      { name: 'c', server: `https://127.0.0.1:${port}`, caFile: cert, skipTLSVerify: false },
      { name: 'u', token: 'tok' },
    );
    const list = await new HttpKubeApi(kc).listNodes();
    assert.equal(list.resourceVersion, '7');
    assert.equal(auth, 'Bearer tok');
    // Without the CA the server is refused.
    const untrusted = new KubeConfig();
    untrusted.loadFromClusterAndUser(
      { name: 'c', server: `https://127.0.0.1:${port}`, skipTLSVerify: false },
      { name: 'u', token: 'tok' },
    );
    await assert.rejects(new HttpKubeApi(untrusted).listNodes(), /self[- ]signed|certificate/i);
  },
);
