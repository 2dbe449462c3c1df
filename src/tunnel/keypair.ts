/**
 * One transport session (whitepaper §5.4.6): the two keys from a handshake, the send counter,
 * the receive replay window, and the indices both sides use to find it.
 */
import { REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME_MS } from '../constants.js';
import { ReplayWindow } from './replay.js';

export class Keypair<P = unknown> {
  sendCounter = 0;
  readonly replay = new ReplayWindow();

  constructor(
    readonly peer: P,
    readonly sendKey: Uint8Array,
    readonly recvKey: Uint8Array,
    /** Set once the index table has allocated it. */
    public localIndex: number,
    readonly remoteIndex: number,
    readonly createdAt: number,
    readonly isInitiator: boolean,
  ) {}

  /** Usable for sending: not too old, counter not exhausted (PROTOCOL.md §6). */
  canSend(now: number): boolean {
    return this.sendCounter < REJECT_AFTER_MESSAGES && now - this.createdAt < REJECT_AFTER_TIME_MS;
  }

  /** Usable for receiving: not older than REJECT_AFTER_TIME. */
  canReceive(now: number): boolean {
    return now - this.createdAt < REJECT_AFTER_TIME_MS;
  }

  /** Makes the keypair unusable for sending (private key change: wireguard-go ExpireCurrentKeypairs). */
  expire(): void {
    this.sendCounter = REJECT_AFTER_MESSAGES;
  }

  wipe(): void {
    this.sendKey.fill(0);
    this.recvKey.fill(0);
  }
}
