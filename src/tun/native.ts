/**
 * The typed loader of the native addon (build/Release/wgts_native.node, built from
 * src/tun/native by `npm ci`). The addon does the OS calls JavaScript cannot make or batch: TUN
 * ioctls, batched TUN read/write, recvmmsg/sendmmsg, SO_MARK and libuv readiness. It decides
 * nothing; LinuxTun and UdpBind drive it.
 *
 * Conventions: packets live in caller-owned slabs (Uint8Array, also over a SharedArrayBuffer);
 * batched calls return a count, or a negative errno for a real error; setup calls throw an Error
 * with `code` ('EBUSY', 'EADDRINUSE'...), negative `errno` and `syscall`, like Node's own.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { WgError } from '../errors.js';

/** Bytes per raw address record: family(1) pad(1) port big-endian(2) address(16). */
export const RAW_ADDR_SIZE = 20;
/**
 * Bytes per local-address record (the address and interface a datagram arrived at, the source to
 * answer from): family(1, 0 = unknown) pad(3) ifindex(4, host order) addr(16).
 */
export const RAW_LOCAL_SIZE = 24;
/** The most datagrams one udpRecv call returns (the addon's stack batch). */
export const NATIVE_MAX_BATCH = 128;

/** An opaque readiness watcher returned by pollStart. */
export interface PollHandle {
  readonly __wgtsPoll: unique symbol;
}

export interface NativeAddon {
  /** With vnetHdr: IFF_VNET_HDR and the offloads granted (`offload`: TUN_F_* bits, -1 = none). */
  tunOpen(
    name: string,
    multiQueue?: boolean,
    vnetHdr?: boolean,
  ): { fd: number; name: string; offload: number };
  /** `vnetHdr`: the size of the virtio_net_hdr the inherited device carries (0 = none). */
  tunFromFd(fd: number): { fd: number; name: string; vnetHdr: number };
  /** Reads up to maxCount packets; packet i lands at i * slotSize + offset. */
  tunRead(
    fd: number,
    slab: Uint8Array,
    slotSize: number,
    maxCount: number,
    lengths: Int32Array,
    offset?: number,
  ): number;
  /** With vnetHdr > 0, each packet goes out behind a zeroed header of that size. */
  tunWrite(
    fd: number,
    slab: Uint8Array,
    offsets: Int32Array,
    lengths: Int32Array,
    count: number,
    vnetHdr?: number,
    /** Bits (COALESCE): runs of one TCP (1) / UDP (2) flow go out as GSO super-packets. */
    coalesce?: number,
  ): number;
  /** Reads frames with a virtio_net_hdr, splitting TSO/USO super-packets into slots. */
  tunReadVnet(
    fd: number,
    slab: Uint8Array,
    slotSize: number,
    maxCount: number,
    lengths: Int32Array,
    scratch: Uint8Array,
    state: Int32Array,
    offset?: number,
  ): number;
  ifMtu(name: string): number;
  setIfMtu(name: string, mtu: number): void;
  ifIndex(name: string): number;
  /** Returns 0 or a negative errno. Stop the fd's poll first. */
  closeFd(fd: number): number;
  udpOpen(family: 4 | 6, port: number): { fd: number; port: number };
  udpSetMark(fd: number, mark: number): void;
  udpGetMark(fd: number): number;
  /** Keyed BLAKE2s (OpenSSL BLAKE2SMAC): out.length bytes of output. */
  blake2sMac(key: Uint8Array, data: Uint8Array, out: Uint8Array): void;
  /** Receive buffers the kernel dropped on the socket (SO_MEMINFO), -1 when unsupported. */
  udpDrops(fd: number): number;
  /** Receives up to min(maxCount, 128) datagrams; sources as RAW_ADDR_SIZE records in addrs. */
  udpRecv(
    fd: number,
    slab: Uint8Array,
    slotSize: number,
    maxCount: number,
    lengths: Int32Array,
    addrs: Uint8Array,
    offset?: number,
    /** Segment size of each coalesced (GRO) buffer, 0 for a plain datagram. */
    groSizes?: Int32Array,
    /** RAW_LOCAL_SIZE records: where each datagram (or coalesced buffer) arrived. */
    locals?: Uint8Array,
  ): number;
  /**
   * Sends `count` datagrams to the one raw address `addr`; returns how many left. A local record
   * after the address (at RAW_ADDR_SIZE) makes them leave from that address.
   */
  udpSend(
    fd: number,
    slab: Uint8Array,
    offsets: Int32Array,
    lengths: Int32Array,
    count: number,
    addr: Uint8Array,
    /** [enabled, errno]: runs of equal datagrams go out with UDP_SEGMENT while enabled. */
    gso?: Int32Array,
    /** [0] = the errno with which the kernel refused the local source (sent without it), or 0. */
    state?: Int32Array,
  ): number;
  /** Probes UDP_SEGMENT (bit 1) and enables UDP_GRO (bit 2) on a socket. */
  udpOffload(fd: number, wantGso: boolean, wantGro: boolean): number;
  /** A non-blocking rtnetlink socket in the IPv4 and IPv6 route groups. */
  routeWatchOpen(): number;
  /** Empties it; returns the route changes read (an overrun counts one), or -errno. */
  routeWatchDrain(fd: number): number;
  /**
   * For `count` endpoint records (RAW_ADDR_SIZE + RAW_LOCAL_SIZE bytes each): the interface the
   * route from the local address (any, without one) to the remote leaves by, or -errno when the
   * kernel refuses that source or has no route.
   */
  routeOifs(records: Uint8Array, count: number, mark: number, out: Int32Array): number;
  /**
   * Routes leaving by `ifindex` with an MTU metric, as 24-byte records: family(1) prefix
   * length(1) pad(2) mtu(4, host order) addr(16); returns how many (at most out.length / 24).
   */
  routeMtus(ifindex: number, out: Uint8Array): number;
  /** status < 0: error or hangup, and the watcher has stopped; else events (1 = readable). */
  pollStart(fd: number, callback: (status: number, events: number) => void): PollHandle;
  pollStop(handle: PollHandle): void;
  // Test hooks: what the addon's per-thread state holds (docs/security.md).
  /** The tag of an empty message under the key this thread's EVP context holds (null: none). */
  aeadKeyProbe(): Uint8Array | null;
  /** BLAKE2s of no data under the key this thread's MAC context holds (null: none). */
  macKeyProbe(): Uint8Array | null;
  /** Non-zero bytes left in this thread's TCP coalescing buffer. */
  coalesceProbe(): number;
  /** An external that is not a poll handle. */
  foreignExternal(): unknown;
}

/** Errno values the wrappers compare against (Linux). */
export const ERRNO = {
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  EBADF: 9,
  EAGAIN: 11,
  EFAULT: 14,
  EBUSY: 16,
  ENODEV: 19,
  EINVAL: 22,
  EMSGSIZE: 90,
  EAFNOSUPPORT: 97,
  EADDRINUSE: 98,
  EADDRNOTAVAIL: 99,
  ENETUNREACH: 101,
  EBADFD: 77,
} as const;

// From dist/src/tun/native.js (or src/tun/native.ts) the repo root is three levels up.
const here = dirname(fileURLToPath(import.meta.url));
const candidates = [
  resolve(here, '../../../build/Release/wgts_native.node'),
  resolve(here, '../../build/Release/wgts_native.node'),
];

let cached: NativeAddon | undefined;

/** Loads the addon once; throws WgError('ERR_UNSUPPORTED') with a hint when it was not built. */
export function native(): NativeAddon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  let firstError: unknown;
  for (const file of candidates) {
    try {
      cached = require(file) as NativeAddon;
      return cached;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') throw err;
      firstError ??= err;
    }
  }
  throw new WgError(
    'ERR_UNSUPPORTED',
    `native addon not found at ${candidates[0]} (run npm ci, or npm run build): ${
      String((firstError as Error | undefined)?.message ?? '').split('\n')[0]
    }`,
  );
}

/** The errno name of a system error thrown by the addon ('EBUSY'...), or undefined. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
