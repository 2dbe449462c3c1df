/**
 * What "auto" MTU means everywhere (`up`, the Kubernetes agent): the underlying link's MTU minus
 * WireGuard's overhead over IPv6 (40 IP + 8 UDP + 32 WireGuard = 80 bytes), as wg-quick, Cilium,
 * Kilo and Flannel do, so one tunnel MTU is right whichever family an endpoint uses or roams to.
 */
export const WIREGUARD_OVERHEAD = 80;

/** The tunnel MTU for a link MTU. */
export function tunnelMtu(linkMtu: number): number {
  return linkMtu - WIREGUARD_OVERHEAD;
}
