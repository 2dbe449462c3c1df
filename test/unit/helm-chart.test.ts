// deploy/helm/wireguard-ts: with its default values the chart renders exactly the objects of
// deploy/kustomization.yaml (every object, so one added to either side later fails here), each
// value changes what it names, and the agent's rendered command line parses. Rendered with the
// in-repo Go template subset (go-template.ts); `helm template` and `kubectl kustomize` are
// compared too where they are installed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { renderTemplate, type Value } from './go-template.js';
import { kustomizeBuild, loadDocs, type K8sObject } from './kustomize-lite.js';
import { parseAgentOptions } from '../../src/control/k8s/options.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
const CHART = join(DEPLOY, 'helm/wireguard-ts');
const NS = 'wireguard-ts';

type Obj = { [k: string]: Value };

function merge(base: Value, over: Value): Value {
  if (!isObj(base) || !isObj(over)) return over;
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge(out[k] ?? null, v);
  return out;
}
const isObj = (v: Value): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

function render(values: Obj = {}): K8sObject[] {
  const chart = yaml.load(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as Obj;
  const defaults = yaml.load(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as Obj;
  const root: Obj = {
    Values: merge(defaults, values),
    Release: { Name: 'wireguard-ts', Namespace: NS, Service: 'Helm', IsInstall: true },
    Chart: Object.fromEntries(
      Object.entries(chart).map(([k, v]) => [k[0]!.toUpperCase() + k.slice(1), v]),
    ),
  };
  const dir = join(CHART, 'templates');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') && !f.startsWith('_'))
    .sort()
    .flatMap((f) => yaml.loadAll(renderTemplate(readFileSync(join(dir, f), 'utf8'), root)))
    .filter((d): d is K8sObject => d !== null && d !== undefined);
}

const key = (o: K8sObject) =>
  `${o.apiVersion} ${o.kind} ${o.metadata.namespace ?? '-'}/${o.metadata.name}`;

function byKey(objs: readonly K8sObject[]): Map<string, K8sObject> {
  const m = new Map<string, K8sObject>();
  for (const o of objs) {
    assert.ok(!m.has(key(o)), `duplicate object ${key(o)}`);
    m.set(key(o), o);
  }
  return m;
}

function assertSameObjects(actual: readonly K8sObject[], expected: readonly K8sObject[]) {
  const a = byKey(actual);
  const e = byKey(expected);
  assert.deepEqual([...a.keys()].sort(), [...e.keys()].sort(), 'the same objects');
  for (const [k, o] of e) assert.deepEqual(a.get(k), o, k);
}

const find = (objs: readonly K8sObject[], kind: string, name = 'wireguard-ts') =>
  objs.find((o) => o.kind === kind && o.metadata.name === name);

interface Container {
  name: string;
  image: string;
  args: string[];
  ports?: Array<{ containerPort: number }>;
  resources: unknown;
  livenessProbe?: { httpGet: { port: number } };
}
function containers(objs: readonly K8sObject[]): Record<string, Container> {
  const ds = find(objs, 'DaemonSet') as unknown as {
    spec: { template: { spec: { containers: Container[] } } };
  };
  return Object.fromEntries(ds.spec.template.spec.containers.map((c) => [c.name, c]));
}
function podSpec(objs: readonly K8sObject[]): Record<string, unknown> {
  const ds = find(objs, 'DaemonSet') as unknown as {
    spec: { template: { spec: Record<string, unknown>; metadata: Record<string, unknown> } };
  };
  return ds.spec.template as unknown as Record<string, unknown>;
}

test('default values render exactly the kustomization: every object, field for field', () => {
  const kustomized = kustomizeBuild(DEPLOY);
  assert.ok(kustomized.length >= 5, 'the kustomization has objects');
  assertSameObjects(render(), kustomized);
});

test('kustomize-lite agrees with kubectl kustomize', (t) => {
  const r = spawnSync('kubectl', ['kustomize', DEPLOY], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    t.skip(`kubectl kustomize is not available (${r.error?.message ?? r.stderr.trim()})`);
    return;
  }
  assertSameObjects(kustomizeBuild(DEPLOY), yaml.loadAll(r.stdout) as K8sObject[]);
});

test('helm template agrees with the in-repo renderer', (t) => {
  const values = { hostEncryption: true, metricsPort: 9100, routeSource: 'workload-ips' };
  const sets = Object.entries(values).map(([k, v]) => `--set=${k}=${v}`);
  const r = spawnSync('helm', ['template', 'wireguard-ts', CHART, '-n', NS, ...sets], {
    encoding: 'utf8',
  });
  if (r.error || r.status !== 0) {
    t.skip(`helm is not installed (${r.error?.message ?? r.stderr.trim()})`);
    return;
  }
  assertSameObjects(
    render(values),
    (yaml.loadAll(r.stdout) as K8sObject[]).filter((d) => d),
  );
});

test('chart, package and kustomization name one version and one image', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const chart = yaml.load(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as Obj;
  assert.equal(chart.version, pkg.version);
  assert.equal(chart.appVersion, pkg.version);
  const kust = loadDocs(join(DEPLOY, 'kustomization.yaml'))[0] as unknown as {
    images: Array<{ name: string; newTag: string }>;
  };
  assert.deepEqual(kust.images, [
    { name: 'ghcr.io/wireguard-ts/wireguard-ts', newTag: pkg.version },
  ]);
  for (const c of Object.values(containers(render()))) {
    assert.equal(c.image, `ghcr.io/wireguard-ts/wireguard-ts:${pkg.version}`);
  }
});

test('each value changes what it names, and the agent command line parses', () => {
  const objs = render({
    image: { repository: 'registry.example/wgts', tag: '9.9.9', pullPolicy: 'Always' },
    interface: 'wg-mesh',
    port: 51999,
    hostEncryption: true,
    strict: true,
    metricsPort: 9100,
    mtu: 1380,
    resources: { agent: { requests: { cpu: '50m' } } },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gw', effect: 'NoSchedule' }],
  });
  const c = containers(objs);
  assert.equal(c.daemon!.image, 'registry.example/wgts:9.9.9');
  assert.equal(c.agent!.image, 'registry.example/wgts:9.9.9');
  assert.match(c.daemon!.args[0]!, /exec \/app\/bin\/wireguard-ts --foreground wg-mesh\n/);
  assert.deepEqual(c.agent!.ports, [{ name: 'metrics', containerPort: 9100, protocol: 'TCP' }]);
  assert.equal(c.agent!.livenessProbe!.httpGet.port, 9100);
  assert.deepEqual(c.agent!.resources, {
    requests: { cpu: '50m', memory: '64Mi' },
    limits: { cpu: '500m', memory: '256Mi' },
  });
  const tmpl = podSpec(objs) as {
    metadata: { annotations: Record<string, string> };
    spec: { tolerations: unknown };
  };
  assert.equal(tmpl.metadata.annotations['prometheus.io/port'], '9100');
  assert.deepEqual(tmpl.spec.tolerations, [
    { key: 'dedicated', operator: 'Equal', value: 'gw', effect: 'NoSchedule' },
  ]);
  const opts = parseAgentOptions(c.agent!.args.slice(1), { NODE_NAME: 'n1' });
  assert.equal(opts.interface, 'wg-mesh');
  assert.equal(opts.port, 51999);
  assert.equal(opts.hostEncryption, true);
  assert.equal(opts.strict, true);
  assert.equal(opts.metricsAddr, ':9100');
  assert.equal(opts.externalDaemon, true);
  // The defaults parse as well, and leave both switches off.
  const d = parseAgentOptions(containers(render()).agent!.args.slice(1), { NODE_NAME: 'n1' });
  assert.equal(d.hostEncryption || d.strict, false);
});

test('route source workload-ips adds the flag and read access to pods, nothing else', () => {
  const base = byKey(render());
  const objs = render({ routeSource: 'workload-ips' });
  assert.ok(containers(objs).agent!.args.includes('--route-source=workload-ips'));
  const added = objs.filter((o) => !base.has(key(o)));
  assert.deepEqual(added.map((o) => o.kind).sort(), ['ClusterRole', 'ClusterRoleBinding']);
  const role = find(objs, 'ClusterRole', 'wireguard-ts-pods') as unknown as { rules: unknown };
  assert.deepEqual(role.rules, [
    { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
  ]);
});

test('createNamespace=false leaves the Namespace out', () => {
  const objs = render({ createNamespace: false });
  assert.equal(find(objs, 'Namespace'), undefined);
  assert.equal(objs.length, render().length - 1);
});

test('the template subset refuses what it does not implement', () => {
  assert.throws(() => renderTemplate('{{ range .Values.x }}{{ end }}', {}), /unsupported/);
  assert.throws(() => renderTemplate('{{ .Values.x | upper }}', { Values: { x: 'a' } }), /upper/);
  assert.throws(() => renderTemplate('{{ if .a }}x', { a: true }), /missing/);
  assert.equal(
    renderTemplate('a:\n  {{- with .b }}\n  b: {{ . | quote }}\n  {{- else }} none{{ end }}', {
      b: 3,
    }),
    'a:\n  b: "3"',
  );
  assert.equal(renderTemplate('{{ "" | default "d" }} {{ 0 | default 7 }}', {}), 'd 7');
});
