// An in-memory world for Device tests: nodes with UDP endpoints, a network that carries
// datagrams between them (with hooks to drop, capture or rewrite), and a virtual clock.
import { randomBytes } from 'node:crypto';
import { Device, type DeviceOutput } from '../../src/tunnel/device.js';
import type { DropReason } from '../../src/errors.js';
import { formatEndpoint, parseEndpoint, parsePrefix, type Endpoint } from '../../src/tunnel/ip.js';
import { generatePrivateKey, publicKey } from '../../src/noise/keys.js';
import type { Peer } from '../../src/tunnel/peer.js';
import type { AnyAead } from '../../src/noise/aead.js';

export interface Datagram {
  from: Endpoint;
  to: Endpoint;
  data: Uint8Array;
}

export class World {
  now = 1_000_000;
  readonly wallBase = Date.UTC(2026, 0, 1);
  readonly nodes: TestNode[] = [];
  queue: Datagram[] = [];
  /** Every datagram that crossed the network, in order. */
  readonly log: Datagram[] = [];
  /** Return false to drop a datagram in flight. */
  filter: (d: Datagram) => boolean = () => true;

  node(name: string, endpoint: string, aead?: AnyAead, sendArenaBytes?: number): TestNode {
    const n = new TestNode(this, name, parseEndpoint(endpoint), undefined, aead, sendArenaBytes);
    this.nodes.push(n);
    return n;
  }

  /** Delivers queued datagrams until the network is quiet. */
  pump(limit = 10_000): void {
    for (let i = 0; i < limit && this.queue.length > 0; i++) {
      const d = this.queue.shift()!;
      this.log.push(d);
      if (!this.filter(d)) continue;
      const to = this.nodes.find((n) => formatEndpoint(n.endpoint) === formatEndpoint(d.to));
      to?.device.receiveDatagram(d.data, d.from, this.now, to.out);
    }
  }

  /** Advances the virtual clock in steps, ticking every device and pumping the network. */
  advance(ms: number, step = 100): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now = Math.min(end, this.now + step);
      for (const n of this.nodes) n.device.tick(this.now, n.out);
      this.pump();
    }
  }

  /** Datagrams of a WireGuard message type (1..4) sent by `from` since index `since` of the log. */
  sent(from: TestNode, type: number, since = 0): Datagram[] {
    return this.log
      .slice(since)
      .filter(
        (d) => formatEndpoint(d.from) === formatEndpoint(from.endpoint) && d.data[0] === type,
      );
  }
}

export class TestNode {
  readonly device: Device;
  readonly privateKey = generatePrivateKey();
  readonly publicKey = publicKey(this.privateKey);
  readonly delivered: Uint8Array[] = [];
  readonly drops: DropReason[] = [];
  readonly out: DeviceOutput;

  constructor(
    readonly world: World,
    readonly name: string,
    public endpoint: Endpoint,
    rekeyAfterTimeMs?: number,
    aead?: AnyAead,
    sendArenaBytes?: number,
  ) {
    this.device = new Device({
      randomBytes: (n) => new Uint8Array(randomBytes(n)),
      wallClockMs: () => world.wallBase + world.now,
      ...(rekeyAfterTimeMs ? { rekeyAfterTimeMs } : {}),
      ...(aead ? { aead } : {}),
      ...(sendArenaBytes ? { sendArenaBytes } : {}),
    });
    this.device.setPrivateKey(this.privateKey);
    this.out = {
      // A copy: with a send arena the device reuses its buffers after the call.
      send: (data, to) =>
        world.queue.push({ from: this.endpoint, to, data: Uint8Array.from(data) }),
      deliver: (p) => this.delivered.push(Uint8Array.from(p)),
      drop: (r) => this.drops.push(r),
    };
  }

  /** Adds `other` as a peer with the given allowed IPs, and its endpoint unless `noEndpoint`. */
  peer(
    other: TestNode,
    allowed: string[],
    opts: { noEndpoint?: boolean; psk?: Uint8Array } = {},
  ): Peer {
    const p = this.device.addPeer(other.publicKey)!;
    for (const a of allowed) this.device.addAllowedIp(p, parsePrefix(a));
    if (!opts.noEndpoint) this.device.setEndpoint(p, other.endpoint);
    if (opts.psk) this.device.setPresharedKey(p, opts.psk);
    return p;
  }

  /** Sends an inner packet into the tunnel as if read from the TUN device. */
  send(packet: Uint8Array): void {
    this.device.sendPacket(packet, this.world.now, this.out);
  }
}

/** A minimal IPv4/UDP packet (checksums are not checked by the device). */
export function ipv4(src: string, dst: string, payload: Uint8Array | string): Uint8Array {
  const body = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
  const p = new Uint8Array(28 + body.length);
  p[0] = 0x45;
  p[2] = (p.length >> 8) & 0xff;
  p[3] = p.length & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set(src.split('.').map(Number), 12);
  p.set(dst.split('.').map(Number), 16);
  p[24] = (body.length + 8) >> 8;
  p[25] = (body.length + 8) & 0xff;
  p.set(body, 28);
  return p;
}

/** A minimal IPv6/UDP packet. */
export function ipv6(src: Uint8Array, dst: Uint8Array, payload: string): Uint8Array {
  const body = new TextEncoder().encode(payload);
  const p = new Uint8Array(48 + body.length);
  p[0] = 0x60;
  p[4] = (body.length + 8) >> 8;
  p[5] = (body.length + 8) & 0xff;
  p[6] = 17;
  p[7] = 64;
  p.set(src, 8);
  p.set(dst, 24);
  p.set(body, 48);
  return p;
}

export const text = (b: Uint8Array, from = 28) => new TextDecoder().decode(b.subarray(from));
