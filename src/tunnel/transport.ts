/**
 * Transport data messages in batches (whitepaper §5.4.6, PROTOCOL.md §6): padding, packing a
 * peer's packets into one slab (header ‖ padded plaintext ‖ tag, back to back) sealed in place,
 * and opening a batch of received messages in place. One AEAD call per batch when the backend
 * has batch calls; no allocation per packet beyond the one slab per batch.
 */
import {
  AEAD_TAG_SIZE,
  PADDING_MULTIPLE,
  REJECT_AFTER_MESSAGES,
  TRANSPORT_HEADER_SIZE,
} from '../constants.js';
import type { AnyAead } from '../noise/aead.js';
import { readCounter, Transport, writeCounter, writeU32 } from '../noise/messages.js';
import type { AllowedIps } from './allowed-ips.js';
import { IPV4_DST_OFFSET, IPV6_DST_OFFSET } from './ip.js';
import type { Keypair } from './keypair.js';

/** WireGuard's padding (wireguard-go calculatePaddingSize): to 16 bytes, never past the MTU. */
export function paddedLength(len: number, mtu: number): number {
  if (mtu === 0) return (len + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1);
  let last = len;
  if (last > mtu) last %= mtu;
  let padded = (last + PADDING_MULTIPLE - 1) & ~(PADDING_MULTIPLE - 1);
  if (padded > mtu) padded = mtu;
  return len + (padded - last);
}

/** Per-batch arrays handed to the batch AEAD, grown to the largest batch seen. */
export class BatchScratch {
  offsets = new Int32Array(256);
  lengths = new Int32Array(256);
  counters = new Float64Array(256);
  keyIdx = new Int32Array(256);
  ok = new Uint8Array(256);

  ensure(n: number): void {
    if (n <= this.offsets.length) return;
    const size = 1 << Math.ceil(Math.log2(n));
    this.offsets = new Int32Array(size);
    this.lengths = new Int32Array(size);
    this.counters = new Float64Array(size);
    this.keyIdx = new Int32Array(size);
    this.ok = new Uint8Array(size);
  }
}

/**
 * A ring of reused memory for send slabs: no allocation (and no garbage) per batch. A slab is
 * valid until `bytes` more have been handed out, so whoever receives the datagrams must be done
 * with them by then: the driver sends every batch before it returns to the event loop.
 */
export class SlabArena {
  private readonly buffer: ArrayBuffer;
  private pos = 0;

  constructor(readonly bytes: number) {
    this.buffer = new ArrayBuffer(bytes);
  }

  alloc(size: number): Uint8Array {
    if (size > this.bytes / 4) return new Uint8Array(size);
    if (this.pos + size > this.bytes) this.pos = 0;
    const slab = new Uint8Array(this.buffer, this.pos, size);
    this.pos = (this.pos + size + 7) & ~7;
    return slab;
  }
}

export interface SealedBatch {
  /** The datagrams, back to back: datagram i is slab[offsets[i] − 16, offsets[i] + lengths[i] + 16). */
  readonly slab: Uint8Array;
  readonly count: number;
  /** Whether any packet was data (not a keepalive): the send-side timers differ. */
  readonly dataSent: boolean;
  /** Packets left unsent because the session's counter ran out. */
  readonly exhausted: number;
}

/**
 * Assigns counters and seals `packets` (empty = keepalive) with `kp` into one slab from `alloc`; offsets
 * and lengths of the plaintexts are left in `s`. `tmp` is scratch for backends without batch
 * calls (at least 64 KiB + 16).
 */
/**
 * The MTU to pad a packet to: the link's, or a smaller one of a route to its destination (the
 * kernel pads to the route's MTU: a padded packet must still fit the route it takes).
 */
function packetMtu(packet: Uint8Array, mtu: number, routeMtus: AllowedIps<number>): number {
  const v = packet.length > 0 ? packet[0]! >> 4 : 0;
  let m: number | undefined;
  if (v === 4 && packet.length >= 20) m = routeMtus.lookupV4(packet, IPV4_DST_OFFSET);
  else if (v === 6 && packet.length >= 40) m = routeMtus.lookupV6(packet, IPV6_DST_OFFSET);
  return m !== undefined && (mtu === 0 || m < mtu) ? m : mtu;
}

export function sealPackets(
  aead: AnyAead,
  s: BatchScratch,
  tmp: Uint8Array,
  kp: Keypair,
  packets: readonly Uint8Array[],
  mtu: number,
  alloc: (size: number) => Uint8Array,
  routeMtus: AllowedIps<number> | null = null,
): SealedBatch {
  s.ensure(packets.length);
  let total = 0;
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i]!;
    const m = routeMtus ? packetMtu(p, mtu, routeMtus) : mtu;
    total += TRANSPORT_HEADER_SIZE + paddedLength(p.length, m) + AEAD_TAG_SIZE;
  }
  const slab = alloc(total);
  const { offsets, lengths, counters } = s;
  let count = 0;
  let off = 0;
  let dataSent = false;
  let exhausted = 0;
  for (let i = 0; i < packets.length; i++) {
    const packet = packets[i]!;
    if (kp.sendCounter >= REJECT_AFTER_MESSAGES) {
      exhausted++;
      continue;
    }
    const counter = kp.sendCounter++;
    const padded = paddedLength(packet.length, routeMtus ? packetMtu(packet, mtu, routeMtus) : mtu);
    writeU32(slab, off, 4);
    writeU32(slab, off + Transport.receiver, kp.remoteIndex);
    writeCounter(slab, off + Transport.counter, counter);
    slab.set(packet, off + Transport.data);
    slab.fill(0, off + Transport.data + packet.length, off + Transport.data + padded);
    offsets[count] = off + Transport.data;
    lengths[count] = padded;
    counters[count] = counter;
    count++;
    off += TRANSPORT_HEADER_SIZE + padded + AEAD_TAG_SIZE;
    if (packet.length > 0) dataSent = true;
  }
  if (aead.sealBatch) {
    aead.sealBatch(kp.sendKey, slab, offsets, lengths, counters, count);
  } else {
    for (let i = 0; i < count; i++) {
      const plain = tmp.subarray(0, lengths[i]!);
      plain.set(slab.subarray(offsets[i]!, offsets[i]! + lengths[i]!));
      aead.seal(kp.sendKey, counters[i]!, plain, null, slab, offsets[i]!);
    }
  }
  return { slab, count, dataSent, exhausted };
}

/** Opens received transport messages in place, several sessions per batch. */
export class BatchOpener {
  private keys = new Uint8Array(32 * 8);

  /**
   * Opens `data[0..count)` (whole datagrams) with `keypairs[i]`, decrypting each in place
   * behind its 16-byte header. Afterwards s.ok[i] says whether it authenticated, s.counters[i]
   * is its counter and s.lengths[i] − 16 its plaintext length.
   */
  open(
    aead: AnyAead,
    s: BatchScratch,
    tmp: Uint8Array,
    data: readonly Uint8Array[],
    keypairs: readonly Keypair[],
    count: number,
  ): void {
    s.ensure(count);
    const { offsets, lengths, counters, ok, keyIdx } = s;
    for (let i = 0; i < count; i++) {
      counters[i] = readCounter(data[i]!, Transport.counter);
      lengths[i] = data[i]!.length - TRANSPORT_HEADER_SIZE;
    }
    const buffer = data[0]!.buffer;
    let shared = aead.openBatch !== undefined;
    for (let i = 1; shared && i < count; i++) shared = data[i]!.buffer === buffer;
    if (shared) {
      // One call over the caller's buffer, with the keys of the (few) sessions involved.
      const seen: Keypair[] = [];
      for (let i = 0; i < count; i++) {
        const kp = keypairs[i]!;
        let k = seen.indexOf(kp);
        if (k < 0) {
          k = seen.length;
          seen.push(kp);
          if (this.keys.length < 32 * seen.length) {
            const grown = new Uint8Array(this.keys.length * 2);
            grown.set(this.keys);
            this.keys = grown;
          }
          this.keys.set(kp.recvKey, 32 * k);
        }
        keyIdx[i] = k;
        offsets[i] = data[i]!.byteOffset + Transport.data;
      }
      const slab = new Uint8Array(buffer, 0, buffer.byteLength);
      const keys = this.keys.subarray(0, 32 * seen.length);
      aead.openBatch!(keys, slab, offsets, lengths, counters, count, ok, keyIdx);
      return;
    }
    for (let i = 0; i < count; i++) {
      const d = data[i]!;
      const n = aead.open(
        keypairs[i]!.recvKey,
        counters[i]!,
        d.subarray(Transport.data),
        null,
        tmp,
        0,
      );
      ok[i] = n < 0 ? 0 : 1;
      if (n >= 0) d.set(tmp.subarray(0, n), Transport.data);
    }
  }
}
