// deploy/: the manifests parse, the kustomization lists them all, the DaemonSet has what a node
// agent needs, and the ClusterRole grants exactly the verbs the agent's client really uses
// (recorded from its requests against the test API server).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { FakeApiServer } from '../integration/k8s/fake-apiserver.js';
import { caSkipReason, makeTestTls } from '../integration/k8s/test-ca.js';

// The test API server is HTTPS with a CA made here, and wants a bearer token.
const tlsSkip = caSkipReason();
import { HttpKubeApi, loadKubeConfig } from '../../src/control/k8s/kube-client.js';
import { parseAgentOptions } from '../../src/control/k8s/options.js';

const DEPLOY = fileURLToPath(new URL('../../../deploy/', import.meta.url));

interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
}

function load(file: string): K8sObject[] {
  return yaml.loadAll(readFileSync(join(DEPLOY, file), 'utf8')).filter((d) => d) as K8sObject[];
}

const manifests = readdirSync(DEPLOY).filter(
  (f) => f.endsWith('.yaml') && f !== 'kustomization.yaml',
);
const all = manifests.flatMap(load);
const byKind = (kind: string) => all.find((o) => o.kind === kind)!;

test('every manifest parses and the kustomization lists each of them', () => {
  const kust = load('kustomization.yaml')[0] as unknown as { resources: string[] };
  assert.deepEqual([...kust.resources].sort(), [...manifests].sort());
  for (const kind of [
    'Namespace',
    'ServiceAccount',
    'ClusterRole',
    'ClusterRoleBinding',
    'DaemonSet',
  ]) {
    assert.ok(byKind(kind), `${kind} present`);
  }
});

interface Container {
  name: string;
  args?: string[];
  command?: string[];
  env?: Array<{ name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  securityContext?: { capabilities?: { add?: string[] } };
  livenessProbe?: { httpGet: { path: string; port: number } };
  readinessProbe?: { httpGet: { path: string; port: number } };
  resources?: { requests?: object; limits?: object };
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}

test('the DaemonSet: host network, NET_ADMIN, tun, key and socket hostPaths, every node, probes', () => {
  const ds = byKind('DaemonSet') as unknown as {
    spec: {
      template: {
        spec: {
          hostNetwork: boolean;
          serviceAccountName: string;
          tolerations: Array<{ operator: string }>;
          containers: Container[];
          volumes: Array<{ name: string; hostPath: { path: string } }>;
        };
      };
    };
  };
  const pod = ds.spec.template.spec;
  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.serviceAccountName, byKind('ServiceAccount').metadata.name);
  assert.ok(pod.tolerations.some((t) => t.operator === 'Exists' && Object.keys(t).length === 1));
  const paths = Object.fromEntries(pod.volumes.map((v) => [v.name, v.hostPath.path]));
  assert.deepEqual(Object.values(paths).sort(), [
    '/dev/net/tun',
    '/var/lib/wireguard-ts',
    '/var/run/wireguard',
  ]);
  for (const c of pod.containers) {
    assert.ok(c.securityContext?.capabilities?.add?.includes('NET_ADMIN'), `${c.name}: NET_ADMIN`);
    assert.ok(c.resources?.requests && c.resources.limits, `${c.name}: resources`);
    assert.ok(
      c.volumeMounts?.some((m) => m.mountPath === '/var/run/wireguard'),
      `${c.name}: socket dir`,
    );
  }
  const agent = pod.containers.find((c) => c.name === 'agent')!;
  assert.equal(agent.livenessProbe?.httpGet.path, '/healthz');
  assert.equal(agent.readinessProbe?.httpGet.path, '/readyz');
  assert.equal(
    agent.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath,
    'spec.nodeName',
  );
  // The agent's flags are ones it accepts, and agree with the mounts.
  assert.equal(agent.args?.[0], 'k8s');
  const opts = parseAgentOptions(agent.args!.slice(1), { NODE_NAME: 'x' });
  assert.equal(opts.externalDaemon, true);
  assert.ok(opts.keyFile.startsWith('/var/lib/wireguard-ts/'));
  assert.ok(agent.volumeMounts?.some((m) => m.mountPath === '/var/lib/wireguard-ts'));
  const daemon = pod.containers.find((c) => c.name === 'daemon')!;
  assert.match(daemon.args!.join(' '), new RegExp(`--foreground ${opts.interface}\\b`));
});

let srv: FakeApiServer;
const dir = mkdtempSync(join(tmpdir(), 'wgtk-rbac-'));
before(async () => {
  if (tlsSkip) return;
  srv = new FakeApiServer({ tls: makeTestTls(dir, ['127.0.0.1']), token: 'agent-token' });
  await srv.start();
  srv.addNode({ name: 'n1', internalIp: '10.0.0.1' });
});
after(async () => {
  if (tlsSkip) return;
  await srv.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Maps an HTTP request on the Node or Pod API to the RBAC (verb, resource) it needs. */
function rbacOf(method: string, path: string): string {
  const u = new URL(path, 'http://x');
  const m = /^\/api\/v1\/(nodes|pods)(\/[^/]+)?(\/status)?$/.exec(u.pathname);
  assert.ok(m, `unexpected path ${path}`);
  const resource = m[3] ? `${m[1]}/status` : m[1]!;
  if (method === 'GET' && !m[2])
    return `${u.searchParams.get('watch') === 'true' ? 'watch' : 'list'} ${resource}`;
  const verb = { GET: 'get', PATCH: 'patch', PUT: 'update', DELETE: 'delete', POST: 'create' }[
    method
  ];
  return `${verb} ${resource}`;
}

test('the ClusterRole grants exactly the verbs the agent uses', { skip: tlsSkip }, async () => {
  const kc = join(dir, 'kubeconfig');
  srv.writeKubeconfig(kc);
  const api = new HttpKubeApi(loadKubeConfig(kc));
  // Every call of the KubeApi interface, which is all the agent can reach.
  await api.getNode('n1');
  await api.listNodes();
  const ac = new AbortController();
  const it = api.watchNodes({
    resourceVersion: srv.resourceVersion,
    timeoutSeconds: 1,
    signal: ac.signal,
  });
  for await (const _ of it) break;
  await api.patchNodeStatus('n1', { metadata: { annotations: { a: 'b' } } });
  const used = new Set(srv.requests.map((r) => rbacOf(r.method, r.path)));

  const role = byKind('ClusterRole') as unknown as {
    rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>;
  };
  const granted = new Set<string>();
  for (const r of role.rules) {
    assert.deepEqual(r.apiGroups, ['']);
    for (const res of r.resources) for (const v of r.verbs) granted.add(`${v} ${res}`);
  }
  assert.deepEqual([...used].sort(), [...granted].sort());
  const binding = byKind('ClusterRoleBinding') as unknown as {
    roleRef: { name: string };
    subjects: Array<{ name: string; namespace: string }>;
  };
  assert.equal(binding.roleRef.name, byKind('ClusterRole').metadata.name);
  assert.equal(binding.subjects[0]!.name, byKind('ServiceAccount').metadata.name);
  assert.equal(binding.subjects[0]!.namespace, byKind('Namespace').metadata.name);
});

test(
  'workload-ips: the pods ClusterRole grants exactly the list and watch the agent makes',
  { skip: tlsSkip },
  async () => {
    const sub = join(DEPLOY, 'workload-ips');
    const docs = ['clusterrole-pods.yaml', 'clusterrolebinding-pods.yaml'].flatMap((f) =>
      yaml.loadAll(readFileSync(join(sub, f), 'utf8')),
    ) as K8sObject[];
    const kust = yaml.load(readFileSync(join(sub, 'kustomization.yaml'), 'utf8')) as {
      kind: string;
      resources: string[];
      patches: Array<{ patch: string }>;
    };
    assert.equal(kust.kind, 'Component');
    assert.deepEqual(kust.resources.sort(), [
      'clusterrole-pods.yaml',
      'clusterrolebinding-pods.yaml',
    ]);
    // The patch adds a flag the agent accepts to the agent container (index 1).
    const ops = yaml.load(kust.patches[0]!.patch) as Array<{ path: string; value: string }>;
    const ds = byKind('DaemonSet') as unknown as {
      spec: { template: { spec: { containers: Container[] } } };
    };
    assert.equal(ops[0]!.path, '/spec/template/spec/containers/1/args/-');
    assert.equal(ds.spec.template.spec.containers[1]!.name, 'agent');
    const args = [...ds.spec.template.spec.containers[1]!.args!.slice(1), ops[0]!.value];
    assert.equal(parseAgentOptions(args, { NODE_NAME: 'x' }).routeSource, 'workload-ips');

    const before = srv.requests.length;
    const kc = join(dir, 'kubeconfig-pods');
    srv.writeKubeconfig(kc);
    const api = new HttpKubeApi(loadKubeConfig(kc));
    await api.listPods();
    const ac = new AbortController();
    for await (const _ of api.watchPods({
      resourceVersion: srv.resourceVersion,
      timeoutSeconds: 1,
      signal: ac.signal,
    }))
      break;
    const reqs = srv.requests.slice(before);
    // Host-network and finished pods are filtered by the server already.
    for (const r of reqs)
      assert.match(decodeURIComponent(r.path), /fieldSelector=spec\.hostNetwork=false,/);
    const used = new Set(reqs.map((r) => rbacOf(r.method, r.path)));
    const role = docs.find((d) => d.kind === 'ClusterRole') as unknown as {
      metadata: { name: string };
      rules: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>;
    };
    const granted = new Set<string>();
    for (const r of role.rules)
      for (const res of r.resources) for (const v of r.verbs) granted.add(`${v} ${res}`);
    assert.deepEqual([...used].sort(), [...granted].sort());
    const binding = docs.find((d) => d.kind === 'ClusterRoleBinding') as unknown as {
      roleRef: { name: string };
      subjects: Array<{ name: string; namespace: string }>;
    };
    assert.equal(binding.roleRef.name, role.metadata.name);
    assert.equal(binding.subjects[0]!.name, byKind('ServiceAccount').metadata.name);
  },
);
