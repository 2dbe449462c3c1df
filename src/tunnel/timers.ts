/**
 * The timer rules of WireGuard (whitepaper §6, kernel timers.c, wireguard-go timers.go;
 * PROTOCOL.md §9), as functions that move a peer's deadlines on events. Deadlines are
 * monotonic ms, 0 when unarmed; the device's tick fires the due ones.
 *
 * | event                                   | rule                                           |
 * | data sent                               | arm new-handshake (10 + 5 s + jitter) unless armed |
 * | data received                           | arm send-keepalive (10 s), or note another is due |
 * | any authenticated packet sent           | cancel send-keepalive                          |
 * | any authenticated packet received       | cancel new-handshake                           |
 * | any authenticated packet sent/received  | re-arm persistent keepalive (N s) if N > 0     |
 * | handshake complete                      | cancel retransmit, reset attempts, stamp time  |
 * | session derived                         | arm zero-key-material (540 s)                  |
 */
import { KEEPALIVE_TIMEOUT_MS, REKEY_TIMEOUT_MS, ZERO_KEYS_AFTER_MS } from '../constants.js';
import type { Peer } from './peer.js';

export function timersDataSent(peer: Peer, now: number, jitterMs: number): void {
  if (!peer.timers.newHandshake) {
    peer.timers.newHandshake = now + KEEPALIVE_TIMEOUT_MS + REKEY_TIMEOUT_MS + jitterMs;
  }
}

export function timersDataReceived(peer: Peer, now: number): void {
  if (!peer.timers.sendKeepalive) peer.timers.sendKeepalive = now + KEEPALIVE_TIMEOUT_MS;
  else peer.timers.needAnotherKeepalive = true;
}

export function timersAnyAuthenticatedPacketSent(peer: Peer): void {
  peer.timers.sendKeepalive = 0;
}

export function timersAnyAuthenticatedPacketReceived(peer: Peer): void {
  peer.timers.newHandshake = 0;
}

export function timersAnyAuthenticatedPacketTraversal(peer: Peer, now: number): void {
  if (peer.persistentKeepaliveSeconds > 0) {
    peer.timers.persistentKeepalive = now + peer.persistentKeepaliveSeconds * 1000;
  }
}

export function timersHandshakeComplete(peer: Peer, wallMs: number): void {
  peer.timers.retransmitHandshake = 0;
  peer.timers.handshakeAttempts = 0;
  peer.timers.sentLastMinuteHandshake = false;
  peer.stats.lastHandshakeWallMs = wallMs;
}

export function timersSessionDerived(peer: Peer, now: number): void {
  peer.timers.zeroKeyMaterial = now + ZERO_KEYS_AFTER_MS;
}
