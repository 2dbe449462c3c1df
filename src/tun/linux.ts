/**
 * The Linux TUN device (TunDevice over /dev/net/tun through the native addon). Reading is driven
 * by libuv readiness: each wake-up drains the fd in batches of up to READ_BATCH packets into one
 * reused slab and hands views of it to the driver. Writes go out in one native call per batch.
 * The device reports its own end (link deleted, fd error) once through onClose.
 *
 * Offloads (as wireguard-go): the device is opened with IFF_VNET_HDR and TUNSETOFFLOAD (checksum,
 * TSO4/6, USO4/6), so the kernel's TCP stack hands over 64 KiB super-packets instead of one read
 * per segment; the addon splits them into MTU-sized IP packets in the read slab, so onPackets sees
 * the same plain packets either way. Writes carry a zero virtio_net_hdr, except runs of one TCP
 * flow, which the addon coalesces into one GSO super-packet (receive GRO, WG_TS_TUN_GRO), and runs
 * of one UDP flow, likewise when the kernel has USO (>= 6.2; WG_TS_TUN_UDP_GRO).
 * WG_TS_TUN_OFFLOAD=0 turns this off, =1 on; unset means DEFAULT_TUN_OFFLOAD.
 */
import { DEFAULT_MTU } from '../constants.js';
import { envSwitch } from './env.js';
import { WgError } from '../errors.js';
import type { TunDevice } from '../tunnel/io.js';
import { ERRNO, errnoCode, native, type NativeAddon, type PollHandle } from './native.js';

/**
 * Offloads when WG_TS_TUN_OFFLOAD is unset. On by measurement (`bench --only go,ts`, 2026-11-25,
 * pairs run back to back): TCP +15-20% with offloads, TCP retransmits 20k -> 0, CPU per Gbit -10%.
 */
export const DEFAULT_TUN_OFFLOAD = true;

/** WG_TS_TUN_OFFLOAD: '0'/'false'/'off' turn TUN offloads off, anything else on; unset: default. */
export function tunOffloadWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return envSwitch(env['WG_TS_TUN_OFFLOAD'], DEFAULT_TUN_OFFLOAD);
}

/**
 * Whether TUN writes coalesce runs of one TCP flow into super-packets (GRO), when WG_TS_TUN_GRO is
 * unset. On by measurement (`bench --only ts`, 2026-11-26, alternating runs): TCP 1 stream 2.45
 * -> 3.30 Gbit/s, 4 streams 2.58 -> 3.83, CPU per Gbit 0.58 -> 0.47.
 */
export const DEFAULT_TUN_GRO = true;

/** WG_TS_TUN_GRO: '0'/'false'/'off' off, anything else on; unset: DEFAULT_TUN_GRO. */
export function tunGroWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return envSwitch(env['WG_TS_TUN_GRO'], DEFAULT_TUN_GRO);
}

/** TUN_F_* offload flags (linux/if_tun.h). */
export const TUN_F = { CSUM: 0x01, TSO4: 0x02, TSO6: 0x04, USO4: 0x20, USO6: 0x40 } as const;

/**
 * Whether TUN writes coalesce runs of one UDP flow into GSO_UDP_L4 super-packets, when
 * WG_TS_TUN_UDP_GRO is unset (only on kernels that grant USO, >= 6.2; wireguard-go does the
 * same there). See docs/performance.md for the A/B measurement behind the default.
 */
export const DEFAULT_TUN_UDP_GRO = true;

/** WG_TS_TUN_UDP_GRO: '0'/'false'/'off' off, anything else on; unset: DEFAULT_TUN_UDP_GRO. */
export function tunUdpGroWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  return envSwitch(env['WG_TS_TUN_UDP_GRO'], DEFAULT_TUN_UDP_GRO);
}

/** tunWrite's coalesce bits (gso.c): which protocols' runs go out as super-packets. */
export const COALESCE = { TCP: 1, UDP: 2 } as const;

/**
 * The coalesce bits for a device: TCP runs whenever frames carry a 10-byte header (the kernel
 * takes TCP GSO frames then), UDP runs only where the kernel granted USO, whose absence also
 * means it would refuse GSO_UDP_L4 frames (before 6.2).
 */
export function coalesceBits(
  vnetHdr: number,
  offload: number,
  env: NodeJS.ProcessEnv = process.env,
): number {
  if (vnetHdr !== 10) return 0;
  const uso = offload > 0 && (offload & (TUN_F.USO4 | TUN_F.USO6)) === (TUN_F.USO4 | TUN_F.USO6);
  return (tunGroWanted(env) ? COALESCE.TCP : 0) | (uso && tunUdpGroWanted(env) ? COALESCE.UDP : 0);
}

/** Int32 slots of the tunReadVnet state (src/tun/native/tun.c). */
const RV = {
  HDR_SIZE: 0,
  PENDING_LEN: 1,
  FRAMES: 3,
  GSO_FRAMES: 4,
  GSO_SEGMENTS: 5,
  MALFORMED: 6,
  CSUM_COMPLETED: 7,
  SIZE: 8,
} as const;

/** What the offload path did so far (counters wrap at 2^32). */
export interface TunOffloadStats {
  /** virtio_net_hdr bytes before every frame; 0 = plain reads and writes. */
  readonly vnetHdr: number;
  /** TUN_F_* flags the kernel granted; 0 none, -1 unknown (an inherited fd). */
  readonly offload: number;
  /** Frames read (plain packets and super-packets). */
  readonly frames: number;
  /** Super-packets read (gso_size > 0), and the packets they were split into. */
  readonly gsoFrames: number;
  readonly gsoSegments: number;
  /** Frames dropped because their virtio_net_hdr did not describe the packet. */
  readonly malformed: number;
  /** Plain packets whose partial checksum was completed here. */
  readonly checksumsCompleted: number;
}

/** Packets per native read call (PERF.md: batches of 32-64 amortise the JS/native border). */
export const READ_BATCH = 64;
/** A slot holds the largest IP packet a TUN can carry (64 KiB MTUs work), rounded up. */
export const TUN_SLOT_SIZE = 65_536;
/** Batches drained per wake-up before yielding; the poll is level-triggered, so the rest waits. */
const MAX_BATCHES_PER_WAKEUP = 16;
/** Bytes of the write slab: packets that are not views of one buffer are copied here. */
const WRITE_SLAB_SIZE = 4 << 20;
/** sizeof(struct virtio_net_hdr): the header size the addon sets on devices it opens. */
const VNET_HDR_LEN = 10;

/** Read errors that mean the device is gone rather than a passing failure. */
const FATAL_READ_ERRNOS: ReadonlySet<number> = new Set([
  ERRNO.EBADFD,
  ERRNO.EIO,
  ERRNO.ENXIO,
  ERRNO.ENODEV,
  ERRNO.EBADF,
  ERRNO.EFAULT,
  ERRNO.EINVAL,
]);

export interface LinuxTunOptions {
  /** Open with IFF_MULTI_QUEUE (more queues can then be attached to the same name). */
  readonly multiQueue?: boolean;
  /** MTU to set at creation; wireguard-go sets 1420. `null` leaves the kernel's value. */
  readonly mtu?: number | null;
  /** IFF_VNET_HDR with TSO/USO/checksum offloads; default tunOffloadWanted(). */
  readonly offload?: boolean;
}

export class LinuxTun implements TunDevice {
  readonly name: string;
  readonly fd: number;
  private readonly addon: NativeAddon;
  /** virtio_net_hdr size of every frame (0: none), and the TUN_F_* flags granted (-1 unknown). */
  private readonly vnetHdr: number;
  private readonly coalesce: number;
  private readonly offload: number;
  private lastMtu: number;
  private poll: PollHandle | null = null;
  private closed = false;
  private started = false;
  private onPackets: ((packets: readonly Uint8Array[]) => void) | null = null;
  private onClose: ((reason: string) => void) | null = null;
  private readonly readSlab = new Uint8Array(READ_BATCH * TUN_SLOT_SIZE);
  private readonly readLengths = new Int32Array(READ_BATCH);
  private readonly views: Uint8Array[] = [];
  private readonly writeSlab = new Uint8Array(WRITE_SLAB_SIZE);
  private writeOffsets = new Int32Array(READ_BATCH);
  private writeLengths = new Int32Array(READ_BATCH);
  /** A super-packet that did not fit in the slots left waits here for the next read call. */
  private readonly scratch: Uint8Array | null;
  private readonly readState = new Int32Array(RV.SIZE);
  private drainScheduled = false;

  private constructor(
    addon: NativeAddon,
    fd: number,
    name: string,
    mtu: number | null,
    vnetHdr: number,
    offload: number,
  ) {
    this.addon = addon;
    this.fd = fd;
    this.name = name;
    this.vnetHdr = vnetHdr;
    this.offload = offload;
    this.coalesce = coalesceBits(vnetHdr, offload);
    this.readState[RV.HDR_SIZE] = vnetHdr;
    this.scratch = vnetHdr > 0 ? new Uint8Array(64 + TUN_SLOT_SIZE) : null;
    this.lastMtu = DEFAULT_MTU;
    try {
      if (mtu !== null) addon.setIfMtu(name, mtu);
      this.lastMtu = addon.ifMtu(name);
    } catch (err) {
      addon.closeFd(fd);
      throw systemError(`cannot set MTU ${mtu ?? ''} on ${name}`, err);
    }
  }

  /** Creates (or attaches to) the TUN `name` and sets its MTU to 1420 unless told otherwise. */
  static create(name: string, opts: LinuxTunOptions = {}): LinuxTun {
    const addon = native();
    let opened: { fd: number; name: string; offload: number };
    try {
      opened = addon.tunOpen(name, opts.multiQueue ?? false, opts.offload ?? tunOffloadWanted());
    } catch (err) {
      if (errnoCode(err) === 'EBUSY') {
        throw new WgError('ERR_IN_USE', `TUN device ${name} is in use`, 'interface');
      }
      throw systemError(`cannot create TUN device ${name}`, err);
    }
    return new LinuxTun(
      addon,
      opened.fd,
      opened.name,
      opts.mtu === undefined ? DEFAULT_MTU : opts.mtu,
      opened.offload >= 0 ? VNET_HDR_LEN : 0,
      opened.offload,
    );
  }

  /**
   * Adopts an inherited TUN fd (WG_TUN_FD); the fd becomes non-blocking. Its offloads are whatever
   * its opener chose: with IFF_VNET_HDR set, frames are parsed (and split) as for our own devices.
   */
  static fromFd(fd: number, opts: Pick<LinuxTunOptions, 'mtu'> = {}): LinuxTun {
    const addon = native();
    let opened: { fd: number; name: string; vnetHdr: number };
    try {
      opened = addon.tunFromFd(fd);
    } catch (err) {
      throw systemError(`fd ${fd} is not a usable TUN device`, err);
    }
    return new LinuxTun(
      addon,
      opened.fd,
      opened.name,
      opts.mtu === undefined ? DEFAULT_MTU : opts.mtu,
      opened.vnetHdr,
      opened.vnetHdr > 0 ? -1 : 0,
    );
  }

  /** Offload state and counters, for tests and diagnostics. */
  stats(): TunOffloadStats {
    const s = this.readState;
    return {
      vnetHdr: this.vnetHdr,
      offload: this.offload,
      frames: s[RV.FRAMES]! >>> 0,
      gsoFrames: s[RV.GSO_FRAMES]! >>> 0,
      gsoSegments: s[RV.GSO_SEGMENTS]! >>> 0,
      malformed: s[RV.MALFORMED]! >>> 0,
      checksumsCompleted: s[RV.CSUM_COMPLETED]! >>> 0,
    };
  }

  /** The link's MTU, re-read each call; the last good value when the query fails (link moved). */
  mtu(): number {
    if (this.closed) return this.lastMtu;
    try {
      this.lastMtu = this.addon.ifMtu(this.name);
    } catch {
      // The link may live in another namespace now: the fd still works, the name does not.
    }
    return this.lastMtu;
  }

  setMtu(mtu: number): void {
    try {
      this.addon.setIfMtu(this.name, mtu);
    } catch (err) {
      throw systemError(`cannot set MTU ${mtu} on ${this.name}`, err);
    }
    this.lastMtu = mtu;
  }

  start(
    onPackets: (packets: readonly Uint8Array[]) => void,
    onClose: (reason: string) => void,
  ): void {
    if (this.closed) throw new WgError('ERR_SYSTEM', `TUN device ${this.name} is closed`);
    if (this.started) throw new WgError('ERR_SYSTEM', `TUN device ${this.name} already started`);
    this.started = true;
    this.onPackets = onPackets;
    this.onClose = onClose;
    this.poll = this.addon.pollStart(this.fd, (status) => this.readable(status));
  }

  private readable(status: number): void {
    if (this.closed) return;
    // After an error/hangup libuv has stopped the watcher; a read tells us why (EBADFD if the
    // link was deleted) and delivers anything still queued.
    for (let batch = 0; batch < MAX_BATCHES_PER_WAKEUP; batch++) {
      const n = this.scratch
        ? this.addon.tunReadVnet(
            this.fd,
            this.readSlab,
            TUN_SLOT_SIZE,
            READ_BATCH,
            this.readLengths,
            this.scratch,
            this.readState,
          )
        : this.addon.tunRead(this.fd, this.readSlab, TUN_SLOT_SIZE, READ_BATCH, this.readLengths);
      if (n < 0) {
        if (FATAL_READ_ERRNOS.has(-n)) this.fail(`TUN read failed: errno ${-n}`);
        else if (status < 0) this.fail(`TUN poll error ${status} and read errno ${-n}`);
        return;
      }
      if (n > 0) this.deliver(n);
      if (this.closed) return;
      if (n < READ_BATCH) break;
    }
    if (status < 0) {
      this.fail(`TUN poll error ${status}`);
      return;
    }
    // Segments parked in scratch are not fd readiness: the poll would not call again for them.
    if (this.readState[RV.PENDING_LEN]! > 0 && !this.drainScheduled) {
      this.drainScheduled = true;
      setImmediate(() => {
        this.drainScheduled = false;
        this.readable(0);
      });
    }
  }

  readNow(): void {
    if (this.started) this.readable(0);
  }

  private deliver(n: number): void {
    const views = this.views;
    if (views.length !== n) views.length = n; // see UdpBind.deliver
    for (let i = 0; i < n; i++) {
      // new Uint8Array(buffer, ...) costs half of subarray() (17 vs 34 ns measured here).
      views[i] = new Uint8Array(this.readSlab.buffer, i * TUN_SLOT_SIZE, this.readLengths[i]);
    }
    this.onPackets!(views);
  }

  private fail(reason: string): void {
    if (this.closed) return;
    const onClose = this.onClose;
    this.close();
    onClose?.(reason);
  }

  write(packets: readonly Uint8Array[]): number {
    if (this.closed || packets.length === 0) return 0;
    const count = packets.length;
    if (this.writeOffsets.length < count) {
      this.writeOffsets = new Int32Array(count);
      this.writeLengths = new Int32Array(count);
    }
    const offsets = this.writeOffsets;
    const lengths = this.writeLengths;
    // Views of one buffer (the driver's slab) go out without a copy.
    const buffer = packets[0]!.buffer;
    let shared = true;
    for (let i = 1; i < count && shared; i++) shared = packets[i]!.buffer === buffer;
    if (shared) {
      for (let i = 0; i < count; i++) {
        offsets[i] = packets[i]!.byteOffset;
        lengths[i] = packets[i]!.byteLength;
      }
      return this.addon.tunWrite(
        this.fd,
        new Uint8Array(buffer),
        offsets,
        lengths,
        count,
        this.vnetHdr,
        this.coalesce,
      );
    }
    let written = 0;
    let queued = 0;
    let used = 0;
    for (let i = 0; i < count; i++) {
      const p = packets[i]!;
      if (p.byteLength > this.writeSlab.byteLength) continue; // cannot be a valid packet
      if (used + p.byteLength > this.writeSlab.byteLength) {
        written += this.addon.tunWrite(
          this.fd,
          this.writeSlab,
          offsets,
          lengths,
          queued,
          this.vnetHdr,
          this.coalesce,
        );
        queued = 0;
        used = 0;
      }
      this.writeSlab.set(p, used);
      offsets[queued] = used;
      lengths[queued] = p.byteLength;
      queued++;
      used += p.byteLength;
    }
    if (queued > 0) {
      written += this.addon.tunWrite(
        this.fd,
        this.writeSlab,
        offsets,
        lengths,
        queued,
        this.vnetHdr,
        this.coalesce,
      );
    }
    return written;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.poll) this.addon.pollStop(this.poll);
    this.poll = null;
    this.addon.closeFd(this.fd);
    this.onPackets = null;
    this.onClose = null;
  }
}

function systemError(what: string, err: unknown): WgError {
  const detail = err instanceof Error ? err.message : String(err);
  return new WgError('ERR_SYSTEM', `${what}: ${detail}`);
}
