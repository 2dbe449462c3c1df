/**
 * Applies UAPI operations to a running device and reads its state back, with wireguard-go's
 * semantics (device/uapi.go): a peer section starts at each public_key; `remove` and
 * `update_only` turn the rest of the section into a no-op ("dummy" peer); our own public key is
 * ignored; turning persistent keepalive on sends a keepalive when the section ends.
 */
import { WgError } from '../errors.js';
import type { Device, DeviceOutput } from '../tunnel/device.js';
import type { Peer } from '../tunnel/peer.js';
import { EADDRINUSE, EINVAL, type UapiDeviceInfo, type UapiSetOp } from './uapi.js';
import type { UapiHandler } from './uapi-server.js';

interface Section {
  peer: Peer | null; // null: a dummy section whose lines are ignored
  created: boolean;
  keepalive: number | null;
  keepaliveWas: number;
}

/** What configuration acts on: the Driver in the daemon, an in-memory stand-in in tests. */
export interface ConfigTarget {
  readonly device: Device;
  /** The UDP port actually bound. */
  readonly listenPort: number;
  /** Rebinds; throws WgError('ERR_IN_USE') when the port is taken. */
  setListenPort(port: number): void;
  setFwmark(mark: number): void;
  /** Runs `fn` with an output for what configuration sends (keepalives), then flushes it. */
  withOutput(fn: (out: DeviceOutput, now: number) => void): void;
  /** Receive buffers the kernel dropped on the UDP sockets (queue full), when known. */
  kernelDrops?(): number | undefined;
  /** Sends whose sticky source address was refused and went from the route's address. */
  readonly sourceFallovers?: number;
}

export class DeviceConfig implements UapiHandler {
  constructor(
    private readonly driver: ConfigTarget,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  get(): UapiDeviceInfo {
    const dev = this.driver.device;
    return {
      privateKey: dev.privateKey,
      listenPort: this.driver.listenPort,
      fwmark: dev.fwmark,
      peers: [...dev.peers.values()].map((p) => ({
        publicKey: p.publicKey,
        presharedKey: p.presharedKey.some((b) => b !== 0) ? p.presharedKey : null,
        endpoint: p.endpoint,
        lastHandshakeMs: p.stats.lastHandshakeWallMs,
        txBytes: p.stats.txBytes,
        rxBytes: p.stats.rxBytes,
        persistentKeepalive: p.persistentKeepaliveSeconds,
        allowedIps: dev.allowedIps.prefixesOf(p),
        protocolVersion: 1,
      })),
    };
  }

  stats(): ReadonlyArray<readonly [string, number]> {
    const dev = this.driver.device;
    const out: [string, number][] = Object.entries(dev.drops).map(([k, v]) => [`drop_${k}`, v]);
    const kernel = this.driver.kernelDrops?.();
    if (kernel !== undefined) out.push(['drop_udp_receive_queue', kernel]);
    if (this.driver.sourceFallovers !== undefined) {
      out.push(['source_fallovers', this.driver.sourceFallovers]);
    }
    let staged = 0;
    for (const p of dev.peers.values()) staged += p.staged.length;
    out.push(['peers', dev.peers.size], ['indices', dev.indexCount], ['staged_packets', staged]);
    out.push(['allowed_ips', dev.allowedIps.size], ['mtu', dev.mtu]);
    return out;
  }

  set(ops: readonly UapiSetOp[]): number {
    const dev = this.driver.device;
    let section: Section | null = null;
    const endSection = () => {
      if (!section?.peer || section.keepalive === null) return;
      const peer = section.peer;
      const seconds = section.keepalive;
      this.driver.withOutput((out, now) => dev.setPersistentKeepalive(peer, seconds, now, out));
    };
    try {
      for (const op of ops) {
        if (section === null || op.key === 'public_key') {
          switch (op.key) {
            case 'private_key':
              dev.setPrivateKey(op.value);
              continue;
            case 'listen_port':
              this.driver.setListenPort(op.value);
              continue;
            case 'fwmark':
              this.driver.setFwmark(op.value);
              continue;
            case 'replace_peers':
              dev.removeAllPeers();
              continue;
            case 'public_key': {
              endSection();
              const existing = dev.getPeer(op.value);
              const peer = existing ?? dev.addPeer(op.value);
              section = {
                peer,
                created: !existing && peer !== null,
                keepalive: null,
                keepaliveWas: 0,
              };
              if (peer) section.keepaliveWas = peer.persistentKeepaliveSeconds;
              continue;
            }
            default:
              return EINVAL; // a peer key before any public_key (the parser refuses it too)
          }
        }
        const s: Section = section;
        if (op.key === 'remove') {
          if (s.peer) dev.removePeer(s.peer);
          s.peer = null;
          continue;
        }
        if (op.key === 'update_only') {
          if (s.created && s.peer) dev.removePeer(s.peer);
          if (s.created) s.peer = null;
          continue;
        }
        const peer = s.peer;
        if (!peer) continue;
        switch (op.key) {
          case 'preshared_key':
            dev.setPresharedKey(peer, op.value);
            break;
          case 'endpoint':
            dev.setEndpoint(peer, op.value);
            break;
          case 'persistent_keepalive_interval':
            s.keepalive = op.value;
            if (s.keepaliveWas !== 0 || op.value === 0) {
              // Only the 0 → N transition sends a keepalive at once.
              peer.persistentKeepaliveSeconds = op.value;
              if (op.value === 0) peer.timers.persistentKeepalive = 0;
              s.keepalive = null;
            }
            break;
          case 'replace_allowed_ips':
            dev.clearAllowedIps(peer);
            break;
          case 'allowed_ip':
            if (op.remove) dev.removeAllowedIp(peer, op.value);
            else dev.addAllowedIp(peer, op.value);
            break;
          case 'protocol_version':
            if (op.value !== 1) return EINVAL;
            break;
          default:
            return EINVAL; // a device key inside a peer section
        }
      }
      endSection();
      return 0;
    } catch (err) {
      if (err instanceof WgError && err.code === 'ERR_IN_USE') {
        this.log(`UAPI set: ${err.message}`);
        return EADDRINUSE;
      }
      this.log(`UAPI set failed: ${err instanceof Error ? err.message : String(err)}`);
      return EINVAL;
    }
  }
}
