/**
 * The only event loop around a Device: it reads batches from the TUN device and the UDP bind,
 * feeds them to the sans-I/O core with the current monotonic time, and executes what comes back
 * (datagrams grouped per endpoint into one batched send, packets into one batched TUN write).
 * One coarse ticker (100 ms) drives every peer timer, as undici does for its timeouts.
 *
 *   TUN batch ──► device.sendPackets ──► sends grouped by endpoint ──► bind.send
 *   UDP batch ──► device.receiveDatagrams ──► deliveries ──► tun.write (and replies ──► bind.send)
 *             └─► tun.readNow: what the kernel answered within the write, in the same turn
 */
import { performance } from 'node:perf_hooks';
import type { DropReason } from '../errors.js';
import type { Device, DeviceOutput, Logger } from './device.js';
import { sameEndpointAndLocal, withoutLocal, type Endpoint } from './ip.js';
import { AllowedIps } from './allowed-ips.js';
import type { Bind, TunDevice } from './io.js';
import type { Peer } from './peer.js';

export const TICK_MS = 100;

export interface DriverOptions {
  log: Logger;
  /** Monotonic clock in ms; performance.now by default. */
  now?: () => number;
  /** Called once when the TUN device goes away (link deleted). */
  onClose?: (reason: string) => void;
}

/** Collects one batch worth of output, then flushes it with as few calls as possible. */
class BatchOutput implements DeviceOutput {
  private endpoints: Endpoint[] = [];
  private datagrams: Uint8Array[][] = [];
  private packets: Uint8Array[] = [];

  constructor(
    private readonly driver: Driver,
    private readonly device: Device,
  ) {}

  send(datagram: Uint8Array, to: Endpoint, _peer: Peer | null): void {
    let i = this.endpoints.indexOf(to);
    if (i < 0) {
      i = this.endpoints.length;
      this.endpoints.push(to);
      this.datagrams.push([]);
    }
    this.datagrams[i]!.push(datagram);
  }

  deliver(packet: Uint8Array, _peer: Peer): void {
    this.packets.push(packet);
  }

  drop(_reason: DropReason, _peer: Peer | null): void {}

  /** Sends and writes what the batch produced; returns how many packets went to the TUN. */
  flush(): number {
    let written = 0;
    if (this.packets.length > 0) {
      written = this.driver.tun.write(this.packets);
      this.device.drops.queue_full += this.packets.length - written;
      this.packets = [];
    }
    const n = this.endpoints.length;
    if (n === 0) return written;
    for (let i = 0; i < n; i++) {
      const list = this.datagrams[i]!;
      const sent = this.driver.bind.send(list, this.endpoints[i]!);
      this.device.drops.send_failed += list.length - sent;
    }
    this.endpoints = [];
    this.datagrams = [];
    return written;
  }
}

export class Driver {
  private closedSocketDrops = 0;
  private fallovers = 0;
  private readonly out: BatchOutput;
  private readonly now: () => number;
  private ticker: NodeJS.Timeout | null = null;
  private boundPort = 0;
  private mark = 0;
  private closed = false;

  constructor(
    readonly device: Device,
    readonly tun: TunDevice,
    readonly bind: Bind,
    private readonly opts: DriverOptions,
  ) {
    this.out = new BatchOutput(this, device);
    this.now = opts.now ?? (() => performance.now());
    bind.onSourceRefused = this.onSourceRefused;
    bind.onRoutesChanged = this.onRoutesChanged;
    bind.onRoutingLoop = (to) =>
      this.opts.log.error(
        `routing loop: ${to.address} port ${to.port} is routed through ${tun.name} itself; ` +
          'not sending there (set the endpoint elsewhere, or route it outside the tunnel)',
      );
  }

  /**
   * Sticky source addresses given up: sends the OS refused (the address removed, its link gone),
   * which left from the route's address instead, and sources dropped after a route change (UAPI
   * stats=1 `source_fallovers`).
   */
  get sourceFallovers(): number {
    return this.fallovers;
  }

  /** Opens the UDP sockets on the device's listen port and starts reading and ticking. */
  start(): void {
    this.boundPort = this.bind.open(this.device.listenPort, this.onDatagrams);
    this.device.listenPort = this.boundPort;
    this.bind.avoidLoopsThrough?.(this.tun.name);
    this.readRouteMtus();
    this.device.mtu = this.tun.mtu();
    this.tun.start(this.onTunPackets, (reason) => this.close(reason));
    this.ticker = setInterval(this.onTick, TICK_MS);
  }

  /** The port actually bound (the kernel's pick when 0 was asked). */
  get listenPort(): number {
    return this.boundPort;
  }

  /**
   * Rebinds to `port` (0 = random). Throws (WgError ERR_IN_USE) when it is taken, after going
   * back to the previous port so the device keeps working.
   */
  setListenPort(port: number): void {
    if (port !== 0 && port === this.boundPort) return;
    const previous = this.boundPort;
    this.closedSocketDrops += this.bind.kernelDrops?.() ?? 0;
    this.bind.close();
    try {
      this.boundPort = this.bind.open(port, this.onDatagrams);
    } catch (err) {
      this.boundPort = this.bind.open(previous, this.onDatagrams);
      if (this.mark) this.bind.setMark(this.mark);
      throw err;
    }
    if (this.mark) this.bind.setMark(this.mark);
    this.device.listenPort = this.boundPort;
  }

  setFwmark(mark: number): void {
    this.mark = mark;
    this.device.fwmark = mark;
    this.bind.setMark(mark);
  }

  /** Datagram buffers the kernel dropped at our UDP sockets (queue full), over every rebind. */
  kernelDrops(): number | undefined {
    const now = this.bind.kernelDrops?.();
    return now === undefined ? undefined : this.closedSocketDrops + now;
  }

  /** Runs `fn` with the batch output and flushes it: for configuration changes that send. */
  withOutput(fn: (out: DeviceOutput, now: number) => void): void {
    fn(this.out, this.now());
    this.out.flush();
  }

  close(reason = 'closed'): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ticker) clearInterval(this.ticker);
    this.tun.close();
    this.bind.close();
    this.opts.onClose?.(reason);
  }

  private readonly onTunPackets = (packets: readonly Uint8Array[]): void => {
    this.device.sendPackets(packets, this.now(), this.out);
    this.out.flush();
  };

  private readonly onDatagrams = (
    datagrams: readonly Uint8Array[],
    sources: readonly Endpoint[],
  ): void => {
    this.device.receiveDatagrams(datagrams, sources, this.now(), this.out);
    // What the kernel answered to the packets just written (see TunDevice.readNow) goes out now.
    if (this.out.flush() > 0 && !this.closed) this.tun.readNow?.();
  };

  /**
   * "Sticky, but not too sticky" (the kernel's words): peers answered from an address that is gone
   * forget it, so later sends take the route's choice until the peer's next authenticated packet
   * tells which address it reaches now.
   */
  private readonly onSourceRefused = (to: Endpoint, errno: number): void => {
    this.fallovers++;
    const plain = withoutLocal(to);
    for (const peer of this.device.peers.values()) {
      if (peer.endpoint !== null && sameEndpointAndLocal(peer.endpoint, to)) peer.endpoint = plain;
    }
    this.opts.log.info(
      `source address ${to.local?.address ?? '?'} refused (errno ${errno}) sending to ` +
        `${to.address} port ${to.port}: sending from the route's address`,
    );
  };

  /** The device pads to the MTU of routes through the tunnel that set one, as the kernel. */
  private readRouteMtus(): void {
    const routes = this.bind.routeMtus?.() ?? [];
    if (routes.length === 0) {
      this.device.routeMtus = null;
      return;
    }
    const table = new AllowedIps<number>();
    const seen = new Map<string, number>();
    for (const r of routes) {
      // One prefix in several tables: the smallest MTU (a padded packet fits either route).
      const key = `${r.prefix.family}/${r.prefix.cidr}/${r.prefix.bytes.join('.')}`;
      const mtu = Math.min(r.mtu, seen.get(key) ?? Infinity);
      seen.set(key, mtu);
      table.insert(r.prefix, mtu);
    }
    this.device.routeMtus = table;
  }

  /**
   * Routes changed: re-read route MTUs, and a peer whose route now leaves by another interface
   * answers from that route's address.
   */
  private readonly onRoutesChanged = (): void => {
    this.readRouteMtus();
    const peers = [...this.device.peers.values()].filter((p) => p.endpoint?.local);
    if (peers.length === 0 || !this.bind.staleSources) return;
    const stale = this.bind.staleSources(peers.map((p) => p.endpoint!));
    peers.forEach((peer, i) => {
      if (!stale[i]) return;
      this.fallovers++;
      const ep = peer.endpoint!;
      peer.endpoint = withoutLocal(ep);
      this.opts.log.info(
        `source address ${ep.local?.address ?? '?'} for ${ep.address} port ${ep.port} ` +
          'dropped after a route change: sending from the route address',
      );
    });
  };

  private readonly onTick = (): void => {
    const mtu = this.tun.mtu();
    if (mtu !== this.device.mtu) {
      this.opts.log.info(`MTU changed to ${mtu}`);
      this.device.mtu = mtu;
    }
    this.device.tick(this.now(), this.out);
    this.out.flush();
  };
}
