/**
 * The two seams between the device and the operating system: the TUN device (inner IP packets)
 * and the bind (outer UDP datagrams). src/tun implements them over the native addon; memory
 * implementations serve tests. The driver is the only user.
 */
import type { Endpoint, IpPrefix } from './ip.js';

/** A route through the tunnel's link with its own MTU. */
export interface RouteMtu {
  readonly prefix: IpPrefix;
  readonly mtu: number;
}

export interface TunDevice {
  /** The interface name the kernel gave the device. */
  readonly name: string;
  /** The link's current MTU; the driver re-reads it on every tick to follow `ip link set mtu`. */
  mtu(): number;
  /**
   * Starts reading. `onPackets` gets every batch of packets read in one wake-up; the buffers are
   * only valid during the call (they are reused). `onClose` is called once if the device goes
   * away (link deleted, fd error), with a reason for the log.
   */
  start(
    onPackets: (packets: readonly Uint8Array[]) => void,
    onClose: (reason: string) => void,
  ): void;
  /** Writes packets to the kernel; returns how many were written (the rest were dropped). */
  write(packets: readonly Uint8Array[]): number;
  /**
   * Reads what is queued now, as a wake-up would (onPackets, synchronously), if anything is. The
   * driver calls it after a write: the kernel often answers a written packet within the write
   * itself (an ICMP echo reply, a TCP ACK), and reading the answer in the same turn saves a trip
   * through the event loop.
   */
  readNow?(): void;
  close(): void;
}

export interface Bind {
  /**
   * Opens the IPv4 and IPv6 UDP sockets on `port` (0 = the kernel picks one; IPv6 is skipped
   * when the host has no IPv6) and returns the port actually bound. Throws WgError('ERR_IN_USE')
   * when the port is taken. `onDatagrams` gets batches; buffers are only valid during the call,
   * `sources[i]` is the sender of `datagrams[i]` (endpoint objects may be reused across calls).
   */
  open(
    port: number,
    onDatagrams: (datagrams: readonly Uint8Array[], sources: readonly Endpoint[]) => void,
  ): number;
  /** Applies SO_MARK to the sockets (0 clears it). */
  setMark(mark: number): void;
  /** Receive buffers the kernel dropped on the sockets (queue full), when the OS tells. */
  kernelDrops?(): number;
  /**
   * Sends datagrams to one endpoint; returns how many were sent. An endpoint with a `local`
   * address (as received) is answered from that address; when the OS refuses it (the address or
   * its interface is gone), the datagrams go without it and `onSourceRefused` is called.
   */
  send(datagrams: readonly Uint8Array[], to: Endpoint): number;
  /** Set by the driver: `to`'s local source was refused (errno), the owner should forget it. */
  onSourceRefused?: ((to: Endpoint, errno: number) => void) | null;
  /**
   * Refuse to send to endpoints the host routes through the interface `name` (the tunnel's own
   * link: the datagrams would come back in as packets to seal, again and again), as the kernel's
   * WireGuard does (ELOOP). `onRoutingLoop` is told once per endpoint.
   */
  avoidLoopsThrough?(name: string): void;
  onRoutingLoop?: ((to: Endpoint) => void) | null;
  /** Routes through the link named in avoidLoopsThrough that carry an MTU (`ip route … mtu N`). */
  routeMtus?(): readonly RouteMtu[];
  /** Set by the driver: the host's routes changed, so sticky sources may be stale. */
  onRoutesChanged?: (() => void) | null;
  /**
   * For each endpoint: whether its local address can no longer be used as the source, because the
   * OS refuses it or the route to the endpoint now leaves by another interface than the one the
   * address was received on (the kernel's rule). False for an endpoint without a local address.
   */
  staleSources?(endpoints: readonly Endpoint[]): boolean[];
  close(): void;
}
