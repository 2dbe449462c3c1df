/**
 * Builds deploy/kustomization.yaml the way `kubectl kustomize` does, for the fields it uses
 * (resources, namespace, images), so the Helm chart can be compared with it on a machine without
 * kubectl. A field outside that list throws: a kustomization that grows past it fails the test.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

interface ImageRule {
  name: string;
  newName?: string;
  newTag?: string;
}

const KNOWN = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'images']);

/** Kinds without a namespace that a node agent's install may hold. */
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  // ValidatingAdmissionPolicy and its binding are missing here on purpose: kubectl's kustomize
  // (5.5) does not know them and gives them the namespace, which the API server drops.
  'MutatingAdmissionPolicy',
  'MutatingAdmissionPolicyBinding',
  'ValidatingWebhookConfiguration',
  'MutatingWebhookConfiguration',
  'CustomResourceDefinition',
  'PriorityClass',
  'RuntimeClass',
  'StorageClass',
]);

export function loadDocs(file: string): K8sObject[] {
  return (yaml.loadAll(readFileSync(file, 'utf8')) as unknown[]).filter(
    (d): d is K8sObject => d !== null && d !== undefined,
  );
}

function retag(image: string, rules: readonly ImageRule[]): string {
  const at = image.lastIndexOf(':');
  const hasTag = at > image.lastIndexOf('/');
  const name = hasTag ? image.slice(0, at) : image;
  const tag = hasTag ? image.slice(at + 1) : undefined;
  const rule = rules.find((r) => r.name === name);
  if (!rule) return image;
  const newTag = rule.newTag ?? tag;
  return (rule.newName ?? name) + (newTag === undefined ? '' : `:${newTag}`);
}

function podSpecs(o: K8sObject): Array<Record<string, unknown>> {
  const spec = o.spec as { template?: { spec?: Record<string, unknown> } } | undefined;
  const pod = spec?.template?.spec;
  return pod ? [pod] : [];
}

export function kustomizeBuild(dir: string): K8sObject[] {
  const kust = loadDocs(join(dir, 'kustomization.yaml'))[0] as unknown as Record<string, unknown>;
  for (const k of Object.keys(kust)) {
    if (!KNOWN.has(k)) throw new Error(`kustomize-lite: unsupported field ${k}`);
  }
  const objects = (kust.resources as string[]).flatMap((f) => loadDocs(join(dir, f)));
  const ns = kust.namespace as string | undefined;
  const rules = (kust.images as ImageRule[] | undefined) ?? [];
  const accounts = new Set(
    objects.filter((o) => o.kind === 'ServiceAccount').map((o) => o.metadata.name),
  );
  for (const o of objects) {
    if (ns && !CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = ns;
    if (ns && (o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding')) {
      for (const s of (o.subjects as Array<Record<string, string>> | undefined) ?? []) {
        if (s.kind === 'ServiceAccount' && accounts.has(s.name!)) s.namespace = ns;
      }
    }
    for (const pod of podSpecs(o)) {
      for (const key of ['containers', 'initContainers']) {
        for (const c of (pod[key] as Array<{ image?: string }> | undefined) ?? []) {
          if (c.image) c.image = retag(c.image, rules);
        }
      }
    }
  }
  return objects;
}
