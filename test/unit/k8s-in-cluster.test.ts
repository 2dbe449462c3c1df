// The in-cluster path a real agent takes: HTTPS to KUBERNETES_SERVICE_HOST/PORT, the CA and the
// bearer token from the service-account directory, and a token that rotates under a running
// client (kubelet swaps the file; the old token may be revoked before the new one is read).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeApiServer } from '../integration/k8s/fake-apiserver.js';
import { caSkipReason, makeTestTls } from '../integration/k8s/test-ca.js';
import { HttpKubeApi, loadKubeConfig } from '../../src/control/k8s/kube-client.js';
import { KubeApiError } from '../../src/control/k8s/kube-types.js';
import { NodeInformer } from '../../src/control/k8s/node-informer.js';
import { parseAgentOptions } from '../../src/control/k8s/options.js';
import { waitFor } from '../../src/lab/wait.js';

const skip = caSkipReason();
const dir = mkdtempSync(join(tmpdir(), 'wgtk-sa-'));
const sa = join(dir, 'serviceaccount');
let srv: FakeApiServer;
let env: NodeJS.ProcessEnv;

function setToken(t: string): void {
  // As kubelet's atomic writer: a new file renamed over the old one.
  writeFileSync(join(sa, '.tmp'), t);
  renameSync(join(sa, '.tmp'), join(sa, 'token'));
}

before(async () => {
  if (skip) return;
  mkdirSync(sa);
  const tls = makeTestTls(dir, ['127.0.0.1']);
  srv = new FakeApiServer({ tls, token: 'first' });
  await srv.start();
  srv.addNode({ name: 'n1', internalIp: '10.0.0.1', podCidrs: ['10.244.1.0/24'] });
  writeFileSync(join(sa, 'ca.crt'), tls.ca);
  writeFileSync(join(sa, 'namespace'), 'wireguard-ts');
  setToken('first');
  env = { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(srv.listenPort) };
});
after(async () => {
  if (!skip) await srv.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('--service-account-dir defaults to the standard mount', () => {
  const o = parseAgentOptions([], { NODE_NAME: 'x' });
  assert.equal(o.serviceAccountDir, '/var/run/secrets/kubernetes.io/serviceaccount');
  assert.equal(
    parseAgentOptions(['--service-account-dir', sa], { NODE_NAME: 'x' }).serviceAccountDir,
    sa,
  );
});

test('in-cluster: HTTPS verified against ca.crt, the token as bearer', { skip }, async () => {
  const api = new HttpKubeApi(loadKubeConfig(undefined, sa, env));
  const list = await api.listNodes();
  assert.deepEqual(
    list.items.map((n) => n.metadata.name),
    ['n1'],
  );
  assert.equal(srv.requests.at(-1)!.token, 'first');
  // Not in a cluster: a clear error, not a connection to nowhere.
  assert.throws(() => loadKubeConfig(undefined, sa, {}), /KUBERNETES_SERVICE_HOST/);
  // Another CA: the server is not trusted.
  const other = join(dir, 'other');
  mkdirSync(other);
  const otherTls = makeTestTls(other, ['127.0.0.1']);
  writeFileSync(join(other, 'ca.crt'), otherTls.ca);
  writeFileSync(join(other, 'token'), 'first');
  await assert.rejects(
    new HttpKubeApi(loadKubeConfig(undefined, other, env)).listNodes(),
    /certificate|self[- ]signed/i,
  );
});

test(
  'a wrong token gets 401; a rotated token file is used on the next request',
  { skip },
  async () => {
    const api = new HttpKubeApi(loadKubeConfig(undefined, sa, env));
    await api.getNode('n1');
    // Revoked before the new token is on disk: 401, as a KubeApiError the informer retries.
    srv.tokens.clear();
    srv.tokens.add('second');
    await assert.rejects(
      api.getNode('n1'),
      (e: unknown) => e instanceof KubeApiError && e.code === 401,
    );
    setToken('second');
    // No 60 s cache (client-node's): the very next request carries the new token.
    assert.equal((await api.getNode('n1')).metadata.name, 'n1');
    assert.equal(srv.requests.at(-1)!.token, 'second');
    srv.tokens.clear();
    srv.tokens.add('first');
    setToken('first');
    await api.getNode('n1');
  },
);

test('an informer keeps following Nodes across a revoked and rotated token', { skip }, async () => {
  const api = new HttpKubeApi(loadKubeConfig(undefined, sa, env));
  const inf = new NodeInformer(api, {
    watchTimeoutSeconds: 30,
    silenceMs: 60_000,
    backoffMinMs: 50,
    backoffMaxMs: 200,
    log: () => undefined,
  });
  inf.start();
  try {
    await waitFor(() => inf.synced, 5_000, 'synced');
    srv.tokens.clear();
    srv.tokens.add('third');
    const denied = srv.unauthorized;
    srv.dropConnections();
    await waitFor(() => srv.unauthorized > denied, 5_000, 'old token refused');
    srv.addNode({ name: 'n-after', internalIp: '10.0.0.9' });
    setToken('third');
    await waitFor(() => inf.nodes.has('n-after'), 5_000, 'change seen with the new token');
  } finally {
    await inf.stop();
    srv.tokens.clear();
    srv.tokens.add('first');
    setToken('first');
  }
});
