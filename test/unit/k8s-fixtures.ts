// What the Kubernetes unit tests share: node keys and the agent's routing settings as its
// defaults make them (table 51820, mark 0x80000, rule priority 100).
import type { RoutingConfig } from '../../src/control/k8s/routing.js';

/** A public key (base64) made of 32 bytes of `n`. */
export const key = (n: number): string => Buffer.alloc(32, n).toString('base64');

export function routingConfig(over: Partial<RoutingConfig> = {}): RoutingConfig {
  return {
    ifname: 'wg-ts',
    table: 51820,
    fwmark: 0x80000,
    rulePriority: 100,
    hostEncryption: false,
    strict: false,
    exemptPorts: [],
    ...over,
  };
}
