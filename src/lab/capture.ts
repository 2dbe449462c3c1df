/**
 * Underlay packet capture for "is it really encrypted?" checks (demo, benchmark, tests): runs
 * tcpdump on a link, then parses the pcap file itself to classify every frame (WireGuard message
 * type by its header and length, or plain UDP/TCP/ICMP/ARP) and to search the raw bytes for a
 * marker string that was sent in clear through the tunnel.
 *
 *   const cap = await startCapture(lab, p.a.ns, p.a.veth);
 *   ...send 'MARKER-123' through the tunnel...
 *   const res = await cap.stop();
 *   res.contains('MARKER-123');   // false when encrypted
 *   res.counts;                   // { 'wg-data': 12, 'wg-initiation': 1, arp: 2, ... }
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatAddress } from '../tunnel/ip.js';
import type { Lab, Netns } from './lab.js';
import { waitFor } from './wait.js';

export type PacketKind =
  | 'wg-initiation'
  | 'wg-response'
  | 'wg-cookie'
  | 'wg-data'
  | 'udp'
  | 'tcp'
  | 'icmp'
  | 'icmp6'
  | 'arp'
  | 'other';

export interface CapturedPacket {
  readonly kind: PacketKind;
  readonly src: string;
  readonly dst: string;
  /** UDP/TCP ports, 0 otherwise. */
  readonly sport: number;
  readonly dport: number;
  /** Length of the frame on the wire. */
  readonly length: number;
  /** UDP payload length (the WireGuard message size), 0 for other packets. */
  readonly payloadLength: number;
}

export interface CaptureResult {
  readonly packets: readonly CapturedPacket[];
  /** Packets per kind. */
  readonly counts: Readonly<Partial<Record<PacketKind, number>>>;
  /** How many packets are WireGuard messages. */
  readonly wireguard: number;
  /** True when `marker` occurs anywhere in the captured bytes. */
  contains(marker: string | Uint8Array): boolean;
}

export interface Capture {
  readonly file: string;
  /** Stops tcpdump (flushing the file) and parses what it caught. */
  stop(): Promise<CaptureResult>;
}

/** Starts tcpdump on `iface` inside `ns`; resolves once it is capturing. */
export async function startCapture(
  lab: Lab,
  ns: Netns | null,
  iface: string,
  filter: readonly string[] = [],
): Promise<Capture> {
  const file = join(lab.tmpdir(), 'underlay.pcap');
  const proc = lab.spawn(ns, 'tcpdump', [
    '-i',
    iface,
    '-n',
    '-U',
    '--immediate-mode',
    '-s',
    '0',
    '-w',
    file,
    ...filter,
  ]);
  await waitFor(
    () => {
      if (proc.exitStatus()) throw new Error(`tcpdump exited: ${proc.output()}`);
      return proc.output().includes('listening on');
    },
    5000,
    `tcpdump on ${iface}`,
    20,
  );
  return {
    file,
    stop: async () => {
      proc.kill('SIGINT');
      await proc.exited;
      return parsePcap(readFileSync(file));
    },
  };
}

function addr(b: Buffer, o: number, len: 4 | 16): string {
  return formatAddress(new Uint8Array(b.subarray(o, o + len)));
}

/** The WireGuard message kind of a UDP payload, judged by type and length, or 'udp'. */
export function wireguardKind(p: Buffer): PacketKind {
  if (p.length < 4 || p[1] !== 0 || p[2] !== 0 || p[3] !== 0) return 'udp';
  if (p[0] === 1 && p.length === 148) return 'wg-initiation';
  if (p[0] === 2 && p.length === 92) return 'wg-response';
  if (p[0] === 3 && p.length === 64) return 'wg-cookie';
  // Data is 16 + padded payload + 16; padding stops at the MTU, so no length modulus holds.
  if (p[0] === 4 && p.length >= 32) return 'wg-data';
  return 'udp';
}

function classify(frame: Buffer, linkType: number): CapturedPacket {
  const none = { src: '', dst: '', sport: 0, dport: 0, length: frame.length, payloadLength: 0 };
  // Ethernet (1) or Linux cooked v1 (113): find the ethertype and the network header.
  let ethertype: number;
  let off: number;
  if (linkType === 1) {
    ethertype = frame.readUInt16BE(12);
    off = 14;
  } else if (linkType === 113) {
    ethertype = frame.readUInt16BE(14);
    off = 16;
  } else {
    return { kind: 'other', ...none };
  }
  if (ethertype === 0x0806) return { kind: 'arp', ...none };
  let proto: number;
  let src: string;
  let dst: string;
  let l4: number;
  if (ethertype === 0x0800) {
    proto = frame[off + 9]!;
    src = addr(frame, off + 12, 4);
    dst = addr(frame, off + 16, 4);
    l4 = off + (frame[off]! & 0x0f) * 4;
  } else if (ethertype === 0x86dd) {
    proto = frame[off + 6]!;
    src = addr(frame, off + 8, 16);
    dst = addr(frame, off + 24, 16);
    l4 = off + 40;
  } else {
    return { kind: 'other', ...none };
  }
  const base = { src, dst, length: frame.length };
  if (proto === 17 && frame.length >= l4 + 8) {
    const sport = frame.readUInt16BE(l4);
    const dport = frame.readUInt16BE(l4 + 2);
    const payload = frame.subarray(l4 + 8);
    return { kind: wireguardKind(payload), ...base, sport, dport, payloadLength: payload.length };
  }
  if (proto === 6 && frame.length >= l4 + 4) {
    const ports = { sport: frame.readUInt16BE(l4), dport: frame.readUInt16BE(l4 + 2) };
    return { kind: 'tcp', ...base, ...ports, payloadLength: 0 };
  }
  const kind: PacketKind = proto === 1 ? 'icmp' : proto === 58 ? 'icmp6' : 'other';
  return { kind, ...base, sport: 0, dport: 0, payloadLength: 0 };
}

/** Parses a classic pcap file (either byte order, µs or ns timestamps). */
export function parsePcap(data: Buffer): CaptureResult {
  const packets: CapturedPacket[] = [];
  if (data.length >= 24) {
    const magic = data.readUInt32LE(0);
    const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
    const u32 = (o: number) => (le ? data.readUInt32LE(o) : data.readUInt32BE(o));
    const linkType = u32(20);
    for (let o = 24; o + 16 <= data.length;) {
      const incl = u32(o + 8);
      const frame = data.subarray(o + 16, Math.min(data.length, o + 16 + incl));
      o += 16 + incl;
      try {
        packets.push(classify(frame, linkType));
      } catch {
        const length = frame.length;
        packets.push({
          kind: 'other',
          src: '',
          dst: '',
          sport: 0,
          dport: 0,
          length,
          payloadLength: 0,
        });
      }
    }
  }
  const counts: Partial<Record<PacketKind, number>> = {};
  for (const p of packets) counts[p.kind] = (counts[p.kind] ?? 0) + 1;
  return {
    packets,
    counts,
    wireguard: packets.filter((p) => p.kind.startsWith('wg-')).length,
    contains: (marker) => data.includes(Buffer.from(marker)),
  };
}
