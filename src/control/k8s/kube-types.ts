/**
 * The few Kubernetes shapes the agent reads (Node, NodeList, watch events, Status) and the API it
 * needs from a cluster. The agent depends on `KubeApi` only, so unit tests can drive it with an
 * in-memory fake and integration tests with the loopback test API server.
 */

export interface NodeAddress {
  readonly type: string;
  readonly address: string;
}

export interface KubeNode {
  readonly kind?: string;
  readonly apiVersion?: string;
  readonly metadata: {
    readonly name: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
    /** RFC 3339, set by the API server: who came first when two Nodes claim the same thing. */
    readonly creationTimestamp?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec?: {
    readonly podCIDR?: string;
    readonly podCIDRs?: readonly string[];
  };
  readonly status?: {
    readonly addresses?: readonly NodeAddress[];
  };
}

export interface NodeList {
  readonly items: readonly KubeNode[];
  readonly resourceVersion: string;
}

/** The fields of a Pod the workload-ips route source reads. */
export interface KubePod {
  readonly kind?: string;
  readonly apiVersion?: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly resourceVersion?: string;
    readonly creationTimestamp?: string;
  };
  readonly spec?: { readonly nodeName?: string; readonly hostNetwork?: boolean };
  readonly status?: {
    readonly phase?: string;
    readonly podIP?: string;
    readonly podIPs?: ReadonlyArray<{ readonly ip: string }>;
  };
}

export interface ObjectList<T> {
  readonly items: readonly T[];
  readonly resourceVersion: string;
}

export interface KubeStatus {
  readonly kind?: string;
  readonly code?: number;
  readonly reason?: string;
  readonly message?: string;
}

export type WatchEvent<T = KubeNode> =
  | { readonly type: 'ADDED' | 'MODIFIED' | 'DELETED'; readonly object: T }
  | {
      readonly type: 'BOOKMARK';
      readonly object: { readonly metadata: { readonly resourceVersion: string } };
    }
  | { readonly type: 'ERROR'; readonly object: KubeStatus };

export interface WatchOptions {
  readonly resourceVersion: string;
  readonly timeoutSeconds: number;
  readonly signal: AbortSignal;
}

/** A JSON merge patch (RFC 7386) body: `null` deletes a key. */
export type MergePatch = { readonly [k: string]: MergePatch | string | number | boolean | null };

export interface KubeApi {
  getNode(name: string): Promise<KubeNode>;
  listNodes(signal?: AbortSignal): Promise<NodeList>;
  /** Yields events until the server ends the stream; throws KubeApiError (code 410 when gone). */
  watchNodes(opts: WatchOptions): AsyncIterable<WatchEvent>;
  /** Merge patch on the status subresource: the only write the agent's RBAC allows. */
  patchNodeStatus(name: string, patch: MergePatch): Promise<KubeNode>;
  /** Pods that are not host-network and not finished (--route-source workload-ips only). */
  listPods?(signal?: AbortSignal): Promise<ObjectList<KubePod>>;
  watchPods?(opts: WatchOptions): AsyncIterable<WatchEvent<KubePod>>;
}

/**
 * The server-side filter of the Pod list and watch: host-network pods carry their node's IP,
 * and finished pods have given theirs back. The agent filters the same way client-side.
 */
export const POD_FIELD_SELECTOR =
  'spec.hostNetwork=false,status.phase!=Succeeded,status.phase!=Failed';

/** An API error with the HTTP (or watch ERROR) code; 410 means the resourceVersion expired. */
export class KubeApiError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = 'KubeApiError';
    this.code = code;
  }
}
