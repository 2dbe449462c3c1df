/**
 * Proof that the tunnel encrypts, the way one shows it with Wireshark: capture the underlay with
 * tcpdump while a marker string is sent through the tunnel, then check that the marker's bytes
 * never appear in the capture and that every IP packet on the wire is WireGuard UDP. A control
 * run sends the same kind of marker over the bare underlay first and must see it in plaintext,
 * so a broken capture cannot pass for an encrypted one.
 */
import { randomBytes } from 'node:crypto';
import type { Lab } from '../src/lab/lab.js';
import { startCapture, type CaptureResult } from '../src/lab/capture.js';
import { waitFor } from '../src/lab/wait.js';
import type { CaseName } from './options.js';
import type { EncryptionProof } from './results.js';
import { TUNNEL_B, UNDERLAY_B, type Underlay } from './topology.js';

const MARKER_PORT = 5301;

/** Sends `marker` over TCP to namespace b at `host` and resolves whether b received it. */
async function sendMarker(lab: Lab, u: Underlay, host: string, marker: string): Promise<boolean> {
  const rx = lab.spawn(u.b, 'ncat', ['-l', '-p', String(MARKER_PORT), '--recv-only']);
  try {
    // The listener has no ready signal: retry the connection until it is accepted.
    await waitFor(
      async () => {
        const args = ['--send-only', '-w', '2', host, String(MARKER_PORT)];
        return (await lab.tryExec(u.a, 'ncat', args, { input: marker })).code === 0;
      },
      10_000,
      `the marker receiver on ${host}`,
      100,
    );
    await Promise.race([rx.exited, new Promise((r) => setTimeout(r, 3000))]);
    return rx.output().includes(marker);
  } finally {
    await rx.stop(500);
  }
}

/** Runs `send` while tcpdump captures the underlay veth in namespace a. */
async function captured(
  lab: Lab,
  u: Underlay,
  send: () => Promise<boolean>,
): Promise<{ wire: CaptureResult; delivered: boolean }> {
  // Without immediate mode libpcap holds packets in a ring block that tcpdump drops unwritten
  // when interrupted: a short capture comes back empty. (getopt takes it after -w FILE too.)
  const cap = await startCapture(lab, u.a, u.vethA, ['--immediate-mode']);
  // Stop the capture even when sending failed, so tcpdump never outlives the proof.
  const delivered = await send().catch(async (err: unknown) => {
    await cap.stop().catch(() => undefined);
    throw err;
  });
  return { wire: await cap.stop(), delivered };
}

function newMarker(): string {
  return `WGTS-BENCH-MARKER-${randomBytes(8).toString('hex')}`;
}

export async function proveEncryption(
  lab: Lab,
  u: Underlay,
  caseName: CaseName,
): Promise<EncryptionProof> {
  const controlMarker = newMarker();
  const control = await captured(lab, u, () => sendMarker(lab, u, UNDERLAY_B, controlMarker));
  const controlSeen = control.delivered && control.wire.contains(controlMarker);
  // Repeated so the marker fills several segments' worth of payload, as a real secret might.
  const marker = newMarker();
  const tunnel = await captured(lab, u, () =>
    sendMarker(lab, u, TUNNEL_B, `${marker}\n`.repeat(64)),
  );
  const { wire } = tunnel;
  const markerOnWire = wire.contains(marker);
  const byType = {
    '1': wire.counts['wg-initiation'] ?? 0,
    '2': wire.counts['wg-response'] ?? 0,
    '3': wire.counts['wg-cookie'] ?? 0,
    '4': wire.counts['wg-data'] ?? 0,
  };
  const linkControl = (wire.counts.arp ?? 0) + (wire.counts.other ?? 0);
  const others = wire.packets.filter(
    (p) => !p.kind.startsWith('wg-') && p.kind !== 'arp' && p.kind !== 'other',
  );
  return {
    caseName,
    marker,
    delivered: tunnel.delivered,
    markerOnWire,
    controlMarkerOnWire: controlSeen,
    packets: wire.packets.length,
    wireguardPackets: wire.wireguard,
    wireguardByType: byType,
    otherIpPackets: others.length,
    otherIpSamples: others
      .slice(0, 5)
      .map((p) => `${p.kind} ${p.src}:${p.sport} -> ${p.dst}:${p.dport}, ${p.length} B`),
    linkControlFrames: linkControl,
    passed:
      tunnel.delivered && !markerOnWire && controlSeen && others.length === 0 && byType['4'] > 0,
  };
}
