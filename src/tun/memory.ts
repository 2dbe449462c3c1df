/**
 * In-memory TUN device and UDP network for tests and benchmarks: the same TunDevice and Bind
 * contracts as the Linux ones, with no root, no kernel and deterministic delivery. Delivery is
 * asynchronous (setImmediate, one batch per send or inject), like a real wake-up, so a device
 * answering its own traffic cannot recurse or starve the event loop.
 */
import { DEFAULT_MTU } from '../constants.js';
import { WgError } from '../errors.js';
import type { Bind, TunDevice } from '../tunnel/io.js';
import { endpointFromBytes, formatEndpoint, parseAddress, type Endpoint } from '../tunnel/ip.js';

export class MemoryTun implements TunDevice {
  readonly name: string;
  /** Copies of every packet the device wrote towards the kernel, in order. */
  readonly written: Uint8Array[] = [];
  /** Called with each written packet (a copy) as it is written. */
  onWrite: ((packet: Uint8Array) => void) | null = null;
  private currentMtu: number;
  private onPackets: ((packets: readonly Uint8Array[]) => void) | null = null;
  private onClose: ((reason: string) => void) | null = null;
  private closed = false;

  constructor(name = 'memtun0', mtu = DEFAULT_MTU) {
    this.name = name;
    this.currentMtu = mtu;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  mtu(): number {
    return this.currentMtu;
  }

  /** Simulates `ip link set mtu`. */
  setMtu(mtu: number): void {
    this.currentMtu = mtu;
  }

  start(
    onPackets: (packets: readonly Uint8Array[]) => void,
    onClose: (reason: string) => void,
  ): void {
    if (this.closed) throw new WgError('ERR_SYSTEM', `TUN device ${this.name} is closed`);
    this.onPackets = onPackets;
    this.onClose = onClose;
  }

  /** Simulates the kernel routing packets into the tunnel: delivered as one batch, later. */
  inject(...packets: Uint8Array[]): void {
    const copies = packets.map((p) => Uint8Array.from(p));
    setImmediate(() => this.injectNow(...copies));
  }

  /**
   * Packets the simulated kernel has queued for the device without waking it: delivered by the
   * next readNow (the driver calls it after writing), else by flushQueued.
   */
  readonly queued: Uint8Array[] = [];
  /** readNow calls so far. */
  readNowCalls = 0;

  readNow(): void {
    this.readNowCalls++;
    this.flushQueued();
  }

  /** Delivers what `queued` holds as one batch (what a wake-up would do). */
  flushQueued(): void {
    const packets = this.queued.splice(0);
    this.injectNow(...packets);
  }

  /** Like inject, but delivers synchronously (for tests stepping a device by hand). */
  injectNow(...packets: Uint8Array[]): void {
    if (this.closed || !this.onPackets || packets.length === 0) return;
    this.onPackets(packets);
  }

  write(packets: readonly Uint8Array[]): number {
    if (this.closed) return 0;
    for (const p of packets) {
      const copy = Uint8Array.from(p);
      this.written.push(copy);
      this.onWrite?.(copy);
    }
    return packets.length;
  }

  /** Simulates the link going away (`ip link del`): onClose fires once. */
  remove(reason = 'link deleted'): void {
    if (this.closed) return;
    const onClose = this.onClose;
    this.close();
    onClose?.(reason);
  }

  close(): void {
    this.closed = true;
    this.onPackets = null;
    this.onClose = null;
  }
}

/** Decides whether a datagram is lost on the way (true = drop). */
export type DropHook = (datagram: Uint8Array, from: Endpoint, to: Endpoint) => boolean;

/** An in-process UDP network: binds register at (address, port); send() delivers between them. */
export class MemoryNetwork {
  private readonly binds = new Map<string, MemoryBind>();
  private nextPort = 40_000;
  /** Optional loss: return true to drop a datagram. */
  dropHook: DropHook | null = null;
  /** Datagrams delivered and dropped so far (by the hook or for want of a listener). */
  delivered = 0;
  dropped = 0;

  /** A bind that will listen at `address` (an IPv4 or IPv6 literal) once opened. */
  bind(address = '127.0.0.1'): MemoryBind {
    return new MemoryBind(this, address);
  }

  /** @internal */
  register(bind: MemoryBind, address: string, port: number): number {
    if (port === 0) {
      do {
        port = this.nextPort++;
        if (this.nextPort > 65535) this.nextPort = 40_000;
      } while (this.binds.has(key(address, port)));
    } else if (this.binds.has(key(address, port))) {
      throw new WgError('ERR_IN_USE', `UDP port ${port} is in use on ${address}`, 'listen_port');
    }
    this.binds.set(key(address, port), bind);
    return port;
  }

  /** @internal */
  unregister(address: string, port: number): void {
    this.binds.delete(key(address, port));
  }

  /** @internal Queues one batch from `from` to `to`; delivery happens on a later turn. */
  transmit(datagrams: readonly Uint8Array[], from: Endpoint, to: Endpoint): void {
    const batch: Uint8Array[] = [];
    for (const d of datagrams) {
      if (this.dropHook?.(d, from, to)) {
        this.dropped++;
        continue;
      }
      batch.push(Uint8Array.from(d));
    }
    if (batch.length === 0) return;
    setImmediate(() => {
      const target = this.binds.get(key(to.address, to.port));
      if (!target) {
        this.dropped += batch.length;
        return;
      }
      this.delivered += batch.length;
      target.receive(batch, from);
    });
  }
}

function key(address: string, port: number): string {
  return formatEndpoint(endpointFromBytes(parseAddress(address)!, port));
}

export class MemoryBind implements Bind {
  readonly address: string;
  /** The last SO_MARK applied (no effect in memory). */
  mark = 0;
  private readonly network: MemoryNetwork;
  private readonly family: 4 | 6;
  private port = 0;
  private self: Endpoint | null = null;
  private onDatagrams:
    ((datagrams: readonly Uint8Array[], sources: readonly Endpoint[]) => void) | null = null;

  constructor(network: MemoryNetwork, address: string) {
    const bytes = parseAddress(address);
    if (!bytes) throw new WgError('ERR_INVALID_ADDRESS', `invalid address "${address}"`);
    this.network = network;
    this.family = bytes.length === 4 ? 4 : 6;
    this.address = endpointFromBytes(bytes, 0).address;
  }

  get localPort(): number {
    return this.port;
  }

  /** This bind's endpoint as peers see it (null while closed). */
  get endpoint(): Endpoint | null {
    return this.self;
  }

  open(
    port: number,
    onDatagrams: (datagrams: readonly Uint8Array[], sources: readonly Endpoint[]) => void,
  ): number {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new WgError('ERR_INVALID_PORT', `invalid listen port ${port}`, 'listen_port');
    }
    this.close();
    this.port = this.network.register(this, this.address, port);
    this.self = { family: this.family, address: this.address, port: this.port };
    this.onDatagrams = onDatagrams;
    return this.port;
  }

  setMark(mark: number): void {
    this.mark = mark >>> 0;
  }

  send(datagrams: readonly Uint8Array[], to: Endpoint): number {
    if (!this.self || to.family !== this.family) return 0;
    this.network.transmit(datagrams, this.self, to);
    return datagrams.length;
  }

  /** @internal */
  receive(datagrams: readonly Uint8Array[], from: Endpoint): void {
    if (!this.onDatagrams) return;
    const sources = new Array<Endpoint>(datagrams.length).fill(from);
    this.onDatagrams(datagrams, sources);
  }

  close(): void {
    if (this.self) this.network.unregister(this.address, this.port);
    this.self = null;
    this.port = 0;
    this.onDatagrams = null;
  }
}
