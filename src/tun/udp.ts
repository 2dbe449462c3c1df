/**
 * The Linux UDP bind (Bind over the native addon): one IPv4 and one v6-only IPv6 socket on the
 * same port, drained with recvmmsg batches on libuv readiness, sent with one sendmmsg per batch.
 * Sources become Endpoint objects through a small direct-mapped cache, so a steady peer costs no
 * allocation and a flood from many sources cannot grow memory.
 *
 * Offloads, as wireguard-go does: UDP GSO sends a run of contiguous equal-size datagrams as one
 * message (the kernel segments it), UDP GRO receives coalesced buffers that are split here, so
 * `onDatagrams` sees the same datagrams either way. WG_TS_UDP_GSO=0 / WG_TS_UDP_GRO=0 turn them off.
 *
 * Sticky sources, as the kernel and wireguard-go: every source Endpoint carries the local address
 * and interface its datagram arrived at (`local`), and a send to such an endpoint leaves from that
 * address. When the kernel refuses it (the address was removed, its link went away), the batch
 * goes again without it once and `onSourceRefused` tells the owner to forget it. An rtnetlink
 * watch calls `onRoutesChanged`, and `staleSources` asks the kernel whether the route to an
 * endpoint still leaves by the interface its local address was received on.
 */
import { WgError } from '../errors.js';
import { envSwitch } from './env.js';
import { readRouteMtus, watchRoutes, type RouteWatch } from './routes.js';
import type { Bind } from '../tunnel/io.js';
import type { RouteMtu } from '../tunnel/io.js';
import {
  formatAddress,
  parseAddress,
  ReceivedEndpoint,
  type Endpoint,
  type LocalAddress,
} from '../tunnel/ip.js';
import {
  ERRNO,
  errnoCode,
  native,
  RAW_ADDR_SIZE,
  RAW_LOCAL_SIZE,
  type NativeAddon,
  type PollHandle,
} from './native.js';

/** Datagrams per native receive call. */
export const RECV_BATCH = 64;
/** Slot size: the largest UDP payload (65507 over IPv4, 65527 over IPv6) fits. */
export const UDP_SLOT_SIZE = 65_536;
const MAX_BATCHES_PER_WAKEUP = 16;
const SEND_SLAB_SIZE = 4 << 20;
/** wireguard-go retries a random port this often when IPv6 finds it taken. */
const RANDOM_PORT_TRIES = 100;
/** Entries of the source-endpoint cache (a power of two). */
const ENDPOINT_CACHE_SIZE = 256;
/** An endpoint as the addon sends to it: the remote address record, then the local one. */
const ENDPOINT_RECORD_SIZE = RAW_ADDR_SIZE + RAW_LOCAL_SIZE;

type OnDatagrams = (datagrams: readonly Uint8Array[], sources: readonly Endpoint[]) => void;

const OFFLOAD_GSO = 1;
const OFFLOAD_GRO = 2;

interface Socket {
  readonly family: 4 | 6;
  readonly fd: number;
  poll: PollHandle | null;
  /** [enabled, errno]: the addon clears `enabled` and records why when the kernel refuses GSO. */
  readonly gso: Int32Array;
  /** [errno]: set by a send when the kernel refused the endpoint's local source address. */
  readonly sendState: Int32Array;
  gro: boolean;
}

/** Whether a UDP offload is wanted (on unless switched off; read at each open). */
export function udpOffloadWanted(
  name: 'WG_TS_UDP_GSO' | 'WG_TS_UDP_GRO',
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  return envSwitch(env[name], true);
}

export class UdpBind implements Bind {
  private readonly addon: NativeAddon;
  private v4: Socket | null = null;
  private v6: Socket | null = null;
  private port = 0;
  private mark = 0;
  private routes: RouteWatch | null = null;
  /** The tunnel's own link: endpoints routed through it are loops. 0 = not checked. */
  private loopIfindex = 0;
  /** Whether an endpoint (without a local address) is routed through loopIfindex. */
  private loopOf = new WeakMap<Endpoint, boolean>();
  private onDatagrams: OnDatagrams | null = null;
  // Shared memory, so a crypto pool's workers can open received batches in place.
  private readonly recvSlab = new Uint8Array(new SharedArrayBuffer(RECV_BATCH * UDP_SLOT_SIZE));
  private readonly recvLengths = new Int32Array(RECV_BATCH);
  private readonly groSizes = new Int32Array(RECV_BATCH);
  private readonly recvAddrs = new Uint8Array(RECV_BATCH * RAW_ADDR_SIZE);
  private readonly recvLocals = new Uint8Array(RECV_BATCH * RAW_LOCAL_SIZE);
  /** The ifindex fields of recvLocals (at 4 mod 24: aligned), in host byte order as sent. */
  private readonly recvLocalWords = new Int32Array(this.recvLocals.buffer);
  private readonly views: Uint8Array[] = [];
  private readonly sources: Endpoint[] = [];
  private readonly cacheKeys = new Uint8Array(ENDPOINT_CACHE_SIZE * ENDPOINT_RECORD_SIZE);
  private readonly cacheValues = new Array<Endpoint | undefined>(ENDPOINT_CACHE_SIZE);
  private readonly rawOf = new WeakMap<Endpoint, Uint8Array>();
  private lastLocal: LocalAddress | null = null;
  private readonly lastLocalKey = new Uint8Array(RAW_LOCAL_SIZE);
  private readonly sendSlab = new Uint8Array(SEND_SLAB_SIZE);
  private sendOffsets = new Int32Array(RECV_BATCH);
  private sendLengths = new Int32Array(RECV_BATCH);
  /** The record of an endpoint whose local source was refused, without that source. */
  private readonly plainRecord = new Uint8Array(ENDPOINT_RECORD_SIZE);
  private fallovers = 0;

  /** Called once per socket when the kernel refuses GSO and it is turned off (for the log). */
  onOffloadError: ((message: string) => void) | null = null;
  onSourceRefused: ((to: Endpoint, errno: number) => void) | null = null;
  onRoutesChanged: (() => void) | null = null;
  onRoutingLoop: ((to: Endpoint) => void) | null = null;

  constructor() {
    this.addon = native();
  }

  /** Which offloads are active on the open sockets (diagnostics and tests). */
  get offloads(): { gso: boolean; gro: boolean } {
    const open = [this.v4, this.v6].filter((s): s is Socket => s !== null);
    return {
      gso: open.length > 0 && open.every((s) => s.gso[0] !== 0),
      gro: open.length > 0 && open.every((s) => s.gro),
    };
  }

  /** The bound port (0 while closed). */
  get localPort(): number {
    return this.port;
  }

  /**
   * Receive buffers the kernel dropped on our sockets because the queue was full: datagrams lost
   * before we could read them. A GRO-coalesced buffer counts once. Resets when the port changes.
   */
  kernelDrops(): number {
    let n = 0;
    for (const s of [this.v4, this.v6]) if (s) n += Math.max(0, this.addon.udpDrops(s.fd));
    return n;
  }

  /** Sends whose sticky source the kernel refused, so they went from the route's address. */
  get sourceFallovers(): number {
    return this.fallovers;
  }

  /** The open sockets' fds, for diagnostics and tests. */
  get fds(): readonly number[] {
    return [this.v4, this.v6].filter((s): s is Socket => s !== null).map((s) => s.fd);
  }

  open(port: number, onDatagrams: OnDatagrams): number {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new WgError('ERR_INVALID_PORT', `invalid listen port ${port}`, 'listen_port');
    }
    this.close();
    const tries = port === 0 ? RANDOM_PORT_TRIES : 1;
    for (let attempt = 1; ; attempt++) {
      const r = this.openPair(port);
      if (r === 'ok') break;
      if (attempt >= tries) {
        throw new WgError('ERR_IN_USE', `UDP port ${port || r.port} is in use`, 'listen_port');
      }
    }
    this.onDatagrams = onDatagrams;
    for (const s of [this.v4, this.v6]) if (s) this.enableOffloads(s);
    for (const s of [this.v4, this.v6]) if (s) this.watch(s);
    if (this.mark !== 0) this.setMark(this.mark);
    this.routes = watchRoutes(this.addon, () => {
      this.loopOf = new WeakMap();
      this.onRoutesChanged?.();
    });
    return this.port;
  }

  avoidLoopsThrough(name: string): void {
    try {
      this.loopIfindex = this.addon.ifIndex(name);
    } catch {
      this.loopIfindex = 0; // the link is elsewhere (another namespace): nothing to check
    }
    this.loopOf = new WeakMap();
  }

  /** Whether `to` is routed through the tunnel's own link (asked once per endpoint and routing). */
  private isLoop(to: Endpoint): boolean {
    let loop = this.loopOf.get(to);
    if (loop === undefined) {
      loop = this.loopIfindex > 0 && this.routeOifsOf([to])[0] === this.loopIfindex;
      this.loopOf.set(to, loop);
      if (loop) this.onRoutingLoop?.(to);
    }
    return loop;
  }

  /** routeOifs for endpoints: the interface each one's route leaves by, or -errno. */
  private routeOifsOf(endpoints: readonly Endpoint[]): Int32Array {
    const n = endpoints.length;
    const records = new Uint8Array(n * ENDPOINT_RECORD_SIZE);
    endpoints.forEach((ep, i) => {
      const raw = this.rawFor(ep);
      if (raw) records.set(raw, i * ENDPOINT_RECORD_SIZE);
    });
    const oifs = new Int32Array(n);
    if (typeof this.addon.routeOifs === 'function') {
      this.addon.routeOifs(records, n, this.mark, oifs);
    }
    return oifs;
  }

  routeMtus(): RouteMtu[] {
    return readRouteMtus(this.addon, this.loopIfindex);
  }

  staleSources(endpoints: readonly Endpoint[]): boolean[] {
    const oifs = this.routeOifsOf(endpoints);
    return endpoints.map((ep, i) => {
      const oif = oifs[i]!;
      const local = ep.local;
      if (!local || oif === 0) return false;
      return oif < 0 || (local.ifindex !== 0 && oif !== local.ifindex);
    });
  }

  /** Opens v4, then v6 on the port v4 got; returns the taken port when one of them was in use. */
  private openPair(port: number): 'ok' | { port: number } {
    let v4: Socket | null = null;
    let bound = port;
    try {
      const r = this.addon.udpOpen(4, port);
      v4 = newSocket(4, r.fd);
      bound = r.port;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EADDRINUSE') return { port };
      if (code !== 'EAFNOSUPPORT') throw bindError(port, err);
    }
    let v6: Socket | null = null;
    try {
      const r = this.addon.udpOpen(6, bound);
      v6 = newSocket(6, r.fd);
      bound = r.port;
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EADDRINUSE') {
        if (v4) this.addon.closeFd(v4.fd);
        return { port: bound };
      }
      // A host without IPv6 (disabled, or no address family): serve IPv4 alone.
      if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') {
        if (v4) this.addon.closeFd(v4.fd);
        throw bindError(bound, err);
      }
      if (!v4) throw bindError(bound, err);
    }
    this.v4 = v4;
    this.v6 = v6;
    this.port = bound;
    return 'ok';
  }

  private enableOffloads(s: Socket): void {
    if (typeof this.addon.udpOffload !== 'function') return;
    const gso = udpOffloadWanted('WG_TS_UDP_GSO');
    const gro = udpOffloadWanted('WG_TS_UDP_GRO');
    if (!gso && !gro) return;
    const bits = this.addon.udpOffload(s.fd, gso, gro);
    s.gso[0] = bits & OFFLOAD_GSO ? 1 : 0;
    s.gro = (bits & OFFLOAD_GRO) !== 0;
  }

  private watch(s: Socket): void {
    s.poll = this.addon.pollStart(s.fd, (status) => {
      const err = this.drain(s);
      // libuv stopped the watcher after an error (the recv above consumed a pending socket
      // error); the fd is still ours, so watch it again, unless the fd itself is gone.
      if (status < 0 && s.poll && (s === this.v4 || s === this.v6)) {
        this.addon.pollStop(s.poll);
        s.poll = null;
        if (err !== -ERRNO.EBADF) this.watch(s);
      }
    });
  }

  /** Delivers what is queued; returns the last recv error (negative errno) or 0. */
  private drain(s: Socket): number {
    for (let batch = 0; batch < MAX_BATCHES_PER_WAKEUP; batch++) {
      if (s !== this.v4 && s !== this.v6) return 0; // closed by the callback
      const n = this.addon.udpRecv(
        s.fd,
        this.recvSlab,
        UDP_SLOT_SIZE,
        RECV_BATCH,
        this.recvLengths,
        this.recvAddrs,
        0,
        s.gro ? this.groSizes : undefined,
        this.recvLocals,
      );
      if (n <= 0) {
        if (n === -ERRNO.EINTR) continue;
        return n; // EAGAIN (0), or an error such as a queued ICMP report: nothing to deliver
      }
      this.deliver(n, s.gro);
      if (n < RECV_BATCH) return 0;
    }
    return 0;
  }

  /** Hands the batch over; a GRO-coalesced slot becomes its datagrams, each with the source. */
  private deliver(n: number, gro: boolean): void {
    const views = this.views;
    const sources = this.sources;
    const buffer = this.recvSlab.buffer;
    let k = 0;
    for (let i = 0; i < n; i++) {
      const base = i * UDP_SLOT_SIZE;
      const len = this.recvLengths[i]!;
      const source = this.endpointAt(i);
      const seg = gro ? this.groSizes[i]! : 0;
      if (seg > 0 && len > seg) {
        for (let off = 0; off < len; off += seg) {
          views[k] = new Uint8Array(buffer, base + off, Math.min(seg, len - off));
          sources[k++] = source;
        }
      } else {
        views[k] = new Uint8Array(buffer, base, len);
        sources[k++] = source;
      }
    }
    // Shrinking an array's length is a runtime call that also trims its backing store, which the
    // next larger batch must grow again: only touch it when the batch size changed.
    if (views.length !== k) {
      views.length = k;
      sources.length = k;
    }
    this.onDatagrams?.(views, sources);
  }

  /**
   * The Endpoint for datagram i's source and local address (recvAddrs, recvLocals), reused while
   * the cache holds it: a steady peer costs no allocation.
   */
  private endpointAt(i: number): Endpoint {
    const raw = this.recvAddrs;
    const loc = this.recvLocals;
    const off = i * RAW_ADDR_SIZE;
    const lOff = i * RAW_LOCAL_SIZE;
    const size = raw[off] === 4 ? 8 : 20;
    const lSize = loc[lOff] === 4 ? 12 : loc[lOff] === 6 ? 24 : 1;
    let h = 0x811c9dc5;
    for (let j = 0; j < size; j++) h = Math.imul(h ^ raw[off + j]!, 0x01000193);
    for (let j = 0; j < lSize; j++) h = Math.imul(h ^ loc[lOff + j]!, 0x01000193);
    const slot = (h >>> 0) & (ENDPOINT_CACHE_SIZE - 1);
    const key = slot * ENDPOINT_RECORD_SIZE;
    const keys = this.cacheKeys;
    let hit = this.cacheValues[slot] !== undefined;
    for (let j = 0; j < RAW_ADDR_SIZE && hit; j++) hit = keys[key + j] === raw[off + j];
    const lKey = key + RAW_ADDR_SIZE;
    for (let j = 0; j < RAW_LOCAL_SIZE && hit; j++) hit = keys[lKey + j] === loc[lOff + j];
    if (hit) return this.cacheValues[slot]!;
    // A miss is a new source: under a flood from many sources, every datagram. So nothing here
    // formats text or touches a WeakMap (the send record is made by rawFor if ever needed).
    const addrSize = raw[off] === 4 ? 4 : 16;
    const bytes = new Uint8Array(addrSize + 2);
    bytes.set(raw.subarray(off + 4, off + 4 + addrSize));
    bytes[addrSize] = raw[off + 2]!;
    bytes[addrSize + 1] = raw[off + 3]!;
    const ep = new ReceivedEndpoint(bytes, this.localAt(lOff));
    keys.set(raw.subarray(off, off + RAW_ADDR_SIZE), key);
    keys.set(loc.subarray(lOff, lOff + RAW_LOCAL_SIZE), lKey);
    this.cacheValues[slot] = ep;
    return ep;
  }

  /** The local address record at recvLocals[lOff], or null; the last one made is reused. */
  private localAt(lOff: number): LocalAddress | null {
    const loc = this.recvLocals;
    if (loc[lOff] !== 4 && loc[lOff] !== 6) return null;
    const last = this.lastLocalKey;
    let same = this.lastLocal !== null;
    for (let j = 0; j < RAW_LOCAL_SIZE && same; j++) same = last[j] === loc[lOff + j];
    if (same) return this.lastLocal;
    const bytes = loc.subarray(lOff + 8, lOff + (loc[lOff] === 4 ? 12 : 24));
    this.lastLocal = {
      address: formatAddress(bytes),
      ifindex: this.recvLocalWords[(lOff + 4) >> 2]!,
    };
    last.set(loc.subarray(lOff, lOff + RAW_LOCAL_SIZE));
    return this.lastLocal;
  }

  /** The addon's record for `to`: remote address, then its local address (zeros when none). */
  private rawFor(to: Endpoint): Uint8Array | null {
    let raw = this.rawOf.get(to);
    if (raw) return raw;
    const bytes = to.bytes
      ? to.bytes.subarray(0, to.bytes.length - 2)
      : socketBytes(to.address, to.family);
    if (!bytes) return null;
    raw = new Uint8Array(ENDPOINT_RECORD_SIZE);
    raw[0] = bytes.length === 4 ? 4 : 6;
    raw[2] = to.port >> 8;
    raw[3] = to.port & 0xff;
    raw.set(bytes, 4);
    const local = to.local ? socketBytes(to.local.address, to.family) : null;
    if (local && local.length === bytes.length) {
      raw[RAW_ADDR_SIZE] = raw[0];
      new DataView(raw.buffer).setInt32(RAW_ADDR_SIZE + 4, to.local!.ifindex, ENDIAN_LITTLE);
      raw.set(local, RAW_ADDR_SIZE + 8);
    }
    this.rawOf.set(to, raw);
    return raw;
  }

  /** The memory received datagrams live in (for CryptoPool.share). */
  get receiveBuffer(): SharedArrayBuffer {
    return this.recvSlab.buffer as SharedArrayBuffer;
  }

  setMark(mark: number): void {
    this.mark = mark >>> 0;
    this.loopOf = new WeakMap(); // policy routing by mark decides what loops
    for (const s of [this.v4, this.v6]) {
      if (!s) continue;
      try {
        this.addon.udpSetMark(s.fd, this.mark);
      } catch (err) {
        throw new WgError('ERR_SYSTEM', `cannot set fwmark ${mark}: ${String(err)}`, 'fwmark');
      }
    }
  }

  send(datagrams: readonly Uint8Array[], to: Endpoint): number {
    const count = datagrams.length;
    let raw = this.rawFor(to);
    const s = raw?.[0] === 4 ? this.v4 : this.v6;
    if (!s || !raw || count === 0) return 0;
    // A received endpoint came in from outside the tunnel; a configured one may loop into it.
    if (!to.local && this.loopIfindex > 0 && this.isLoop(to)) return 0;
    if (this.sendOffsets.length < count) {
      this.sendOffsets = new Int32Array(count);
      this.sendLengths = new Int32Array(count);
    }
    const offsets = this.sendOffsets;
    const lengths = this.sendLengths;
    // Views of one buffer (the driver's slab) go out without a copy.
    const buffer = datagrams[0]!.buffer;
    let shared = true;
    for (let i = 1; i < count && shared; i++) shared = datagrams[i]!.buffer === buffer;
    if (shared) {
      for (let i = 0; i < count; i++) {
        offsets[i] = datagrams[i]!.byteOffset;
        lengths[i] = datagrams[i]!.byteLength;
      }
      const sent = this.sendRaw(s, new Uint8Array(buffer), offsets, lengths, count, raw);
      if (s.sendState[0] !== 0) this.sourceRefused(s, to);
      return sent;
    }
    let sent = 0;
    let queued = 0;
    let used = 0;
    for (let i = 0; i < count; i++) {
      const d = datagrams[i]!;
      if (d.byteLength > UDP_SLOT_SIZE) continue;
      if (used + d.byteLength > this.sendSlab.byteLength) {
        sent += this.sendRaw(s, this.sendSlab, offsets, lengths, queued, raw);
        if (s.sendState[0] !== 0) raw = this.sourceRefused(s, to);
        queued = 0;
        used = 0;
      }
      this.sendSlab.set(d, used);
      offsets[queued] = used;
      lengths[queued] = d.byteLength;
      queued++;
      used += d.byteLength;
    }
    if (queued > 0) {
      sent += this.sendRaw(s, this.sendSlab, offsets, lengths, queued, raw);
      if (s.sendState[0] !== 0) this.sourceRefused(s, to);
    }
    return sent;
  }

  /** Counts a fall-over, tells the owner, and returns `to`'s record without the local source. */
  private sourceRefused(s: Socket, to: Endpoint): Uint8Array {
    const errno = s.sendState[0]!;
    s.sendState[0] = 0;
    this.fallovers++;
    const raw = this.rawOf.get(to)!;
    this.plainRecord.fill(0);
    this.plainRecord.set(raw.subarray(0, RAW_ADDR_SIZE));
    this.onSourceRefused?.(to, errno);
    return this.plainRecord;
  }

  /** One native send; contiguous runs go out as GSO messages while the socket allows it. */
  private sendRaw(
    s: Socket,
    slab: Uint8Array,
    offsets: Int32Array,
    lengths: Int32Array,
    count: number,
    raw: Uint8Array,
  ): number {
    if (s.gso[0] === 0) {
      return this.addon.udpSend(s.fd, slab, offsets, lengths, count, raw, undefined, s.sendState);
    }
    const sent = this.addon.udpSend(s.fd, slab, offsets, lengths, count, raw, s.gso, s.sendState);
    if (s.gso[0] === 0) {
      const why = s.gso[1] === ERRNO.EIO ? 'EIO' : `errno ${s.gso[1]}`;
      this.onOffloadError?.(`UDP GSO refused by the kernel (${why}) on IPv${s.family}, turned off`);
    }
    return sent;
  }

  close(): void {
    for (const s of [this.v4, this.v6]) {
      if (!s) continue;
      if (s.poll) this.addon.pollStop(s.poll);
      s.poll = null;
      this.addon.closeFd(s.fd);
    }
    this.routes?.close();
    this.routes = null;
    this.v4 = null;
    this.v6 = null;
    this.port = 0;
    this.onDatagrams = null;
  }
}

function newSocket(family: 4 | 6, fd: number): Socket {
  return {
    family,
    fd,
    poll: null,
    gso: new Int32Array(2),
    sendState: new Int32Array(1),
    gro: false,
  };
}

const ENDIAN_LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** An address as the sockets take it: 4 or 16 bytes, an IPv4-mapped one as IPv4 (v6-only). */
function socketBytes(address: string, family: 4 | 6): Uint8Array | null {
  const bytes = parseAddress(address);
  if (!bytes || bytes.length !== (family === 4 ? 4 : 16)) return null;
  if (bytes.length === 16 && bytes.subarray(0, 10).every((b) => b === 0)) {
    if (bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12);
  }
  return bytes;
}

function bindError(port: number, err: unknown): WgError {
  const detail = err instanceof Error ? err.message : String(err);
  return new WgError('ERR_SYSTEM', `cannot bind UDP port ${port}: ${detail}`, 'listen_port');
}
