// deploy/admission-policy.yaml, evaluated offline with a CEL interpreter (@marcbachmann/cel-js)
// the way the API server runs a ValidatingAdmissionPolicy: match condition, then variables in
// order, then every validation. No API server here, so what this proves is the expressions'
// logic on real Node shapes, not Kubernetes' CEL type checking (see docs/kubernetes.md for
// checking it on a cluster).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import yaml from 'js-yaml';
import { evaluate } from '@marcbachmann/cel-js';

interface Policy {
  kind: string;
  metadata: { name: string };
  spec: {
    failurePolicy: string;
    matchConstraints: {
      resourceRules: Array<{ resources: string[]; operations: string[] }>;
    };
    matchConditions: Array<{ name: string; expression: string }>;
    variables: Array<{ name: string; expression: string }>;
    validations: Array<{ expression: string; message?: string; messageExpression?: string }>;
    policyName?: string;
    validationActions?: string[];
  };
}

const file = fileURLToPath(new URL('../../../deploy/admission-policy.yaml', import.meta.url));
const [policy, binding] = yaml.loadAll(readFileSync(file, 'utf8')) as Policy[];
const AGENT = 'system:serviceaccount:wireguard-ts:wireguard-ts';

type Obj = Record<string, unknown>;

/** 'allowed', 'not-matched', or the failing validation's message. */
function admit(req: {
  username?: string;
  nodeClaim?: string[] | null;
  operation?: string;
  object: Obj | null;
  oldObject: Obj | null;
}): string {
  const userInfo: Obj = { username: req.username ?? AGENT };
  if (req.nodeClaim) userInfo.extra = { 'authentication.kubernetes.io/node-name': req.nodeClaim };
  const ctx: Obj = {
    request: { operation: req.operation ?? 'UPDATE', userInfo },
    object: req.object,
    oldObject: req.oldObject,
  };
  for (const m of policy!.spec.matchConditions)
    if (evaluate(m.expression, ctx) !== true) return 'not-matched';
  const variables: Obj = {};
  ctx.variables = variables;
  for (const v of policy!.spec.variables) variables[v.name] = evaluate(v.expression, ctx);
  for (const v of policy!.spec.validations) {
    let ok: unknown;
    try {
      ok = evaluate(v.expression, ctx);
    } catch (err) {
      // failurePolicy: Fail turns an evaluation error into a denial.
      return `error: ${(err as Error).message.split('\n')[0]}`;
    }
    if (ok !== true)
      return v.messageExpression ? String(evaluate(v.messageExpression, ctx)) : (v.message ?? '?');
  }
  return 'allowed';
}

function nodeObj(name: string, annotations: Record<string, string>, extra: Obj = {}): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: { 'kubernetes.io/hostname': name },
      annotations,
      resourceVersion: '5',
    },
    spec: { podCIDRs: ['10.244.1.0/24'] },
    status: {
      addresses: [{ type: 'InternalIP', address: '10.0.0.1' }],
      conditions: [{ type: 'Ready', status: 'True' }],
    },
    ...extra,
  };
}

const KEY = 'wireguard-ts.io/public-key';
const base = nodeObj('n1', { 'node.alpha.kubernetes.io/ttl': '0' });
const withKey = (o: Obj, k: string) =>
  ({
    ...o,
    metadata: {
      ...(o.metadata as Obj),
      annotations: { ...((o.metadata as Obj).annotations as Obj), [KEY]: k },
      resourceVersion: '6',
    },
  }) as Obj;

test('the policy is fail-closed, denies, and covers nodes and their subresources', () => {
  assert.equal(policy!.kind, 'ValidatingAdmissionPolicy');
  assert.equal(policy!.spec.failurePolicy, 'Fail');
  assert.deepEqual(policy!.spec.matchConstraints.resourceRules[0]!.resources, ['nodes', 'nodes/*']);
  assert.deepEqual(policy!.spec.matchConstraints.resourceRules[0]!.operations, ['*']);
  assert.equal(binding!.kind, 'ValidatingAdmissionPolicyBinding');
  assert.equal(binding!.spec.policyName, policy!.metadata.name);
  assert.deepEqual(binding!.spec.validationActions, ['Deny']);
});

test('the agent may publish and remove its key on its own Node', () => {
  assert.equal(
    admit({ nodeClaim: ['n1'], object: withKey(base, 'k1'), oldObject: base }),
    'allowed',
  );
  assert.equal(
    admit({ nodeClaim: ['n1'], object: base, oldObject: withKey(base, 'k1') }),
    'allowed',
  );
  // A Node with no annotations at all yet.
  const bare = nodeObj('n1', {});
  delete (bare.metadata as Obj).annotations;
  assert.equal(
    admit({ nodeClaim: ['n1'], object: withKey(bare, 'k1'), oldObject: bare }),
    'allowed',
  );
});

test('another Node, no node claim, or any other change is denied', () => {
  const other = nodeObj('n2', {});
  assert.match(
    admit({ nodeClaim: ['n1'], object: withKey(other, 'stolen'), oldObject: other }),
    /only change the Node its token is bound to/,
  );
  assert.match(
    admit({ nodeClaim: null, object: withKey(base, 'k1'), oldObject: base }),
    /only change the Node its token is bound to/,
  );
  assert.match(
    admit({ nodeClaim: ['n1', 'n2'], object: withKey(base, 'k1'), oldObject: base }),
    /only change the Node/,
  );
  const foreignAnn = {
    ...base,
    metadata: { ...(base.metadata as Obj), annotations: { other: 'x' } },
  };
  assert.match(
    admit({ nodeClaim: ['n1'], object: foreignAnn, oldObject: base }),
    /only change wireguard-ts\.io/,
  );
  const label = {
    ...base,
    metadata: {
      ...(base.metadata as Obj),
      labels: { 'node-role.kubernetes.io/control-plane': '' },
    },
  };
  assert.match(admit({ nodeClaim: ['n1'], object: label, oldObject: base }), /labels/);
  // Moving its InternalIP onto another node's address: a status change.
  const moved = {
    ...base,
    status: { addresses: [{ type: 'InternalIP', address: '10.0.0.2' }], conditions: [] },
  };
  assert.match(admit({ nodeClaim: ['n1'], object: moved, oldObject: base }), /spec or status/);
  const spec = { ...base, spec: { podCIDRs: ['10.244.0.0/16'] } };
  assert.match(admit({ nodeClaim: ['n1'], object: spec, oldObject: base }), /spec or status/);
  assert.match(
    admit({ nodeClaim: ['n1'], operation: 'DELETE', object: null, oldObject: base }),
    /only update Nodes/,
  );
  assert.match(
    admit({ nodeClaim: ['n1'], operation: 'CREATE', object: nodeObj('n9', {}), oldObject: null }),
    /only update Nodes/,
  );
});

test('other users (kubelet, admins) are not matched', () => {
  assert.equal(
    admit({ username: 'system:node:n1', object: withKey(base, 'x'), oldObject: base }),
    'not-matched',
  );
  assert.equal(
    admit({ username: 'system:serviceaccount:kube-system:other', object: base, oldObject: base }),
    'not-matched',
  );
});
