/**
 * Noise_IKpsk2 handshakes: one operation is a whole handshake on both sides (write and read the
 * initiation, write and read the response: 8 X25519 operations counting ephemeral key
 * generation), plus the responder's share alone (reading an initiation), which is what a flood
 * of initiations costs before cookies kick in. MACs and the message framing are not included.
 */
import { dh, generateKeyPair } from '../../src/noise/crypto.js';
import {
  readInitiation,
  readResponse,
  staticKeys,
  writeInitiation,
  writeResponse,
  WIREGUARD,
  type TransportKeys,
} from '../../src/noise/handshake.js';
import { generatePresharedKey, generatePrivateKey } from '../../src/noise/keys.js';
import { tai64n } from '../../src/noise/tai64n.js';
import type { MicroSuite } from './harness.js';

const TIMESTAMP_LEN = 12;
const initiator = staticKeys(generatePrivateKey());
const responder = staticKeys(generatePrivateKey());
const psk = generatePresharedKey();
const ssI = dh(initiator.keyObject, responder.publicKey)!;
const ssR = dh(responder.keyObject, initiator.publicKey)!;
const initMsg = new Uint8Array(32 + 48 + TIMESTAMP_LEN + 16);
const respMsg = new Uint8Array(32 + 16);
const EMPTY = new Uint8Array(0);

/** Both sides' transport keys after one full handshake, or an error naming the failed step. */
function handshake(): { i: TransportKeys; r: TransportKeys } {
  const st = writeInitiation(
    WIREGUARD,
    initiator,
    responder.publicKey,
    ssI,
    generateKeyPair(),
    tai64n(Date.now()),
    initMsg,
    0,
  );
  if (!st) throw new Error('handshake: writeInitiation failed');
  const read = readInitiation(WIREGUARD, responder, initMsg, 0, TIMESTAMP_LEN, (pk) =>
    Buffer.compare(pk, initiator.publicKey) === 0 ? ssR : null,
  );
  if (!read.ok) throw new Error(`handshake: readInitiation: ${read.reason}`);
  const r = writeResponse(read.value, psk, generateKeyPair(), EMPTY, respMsg, 0);
  if (!r) throw new Error('handshake: writeResponse failed');
  const i = readResponse(st, initiator, psk, respMsg, 0, 0);
  if (!i) throw new Error('handshake: readResponse failed');
  return { i: i.keys, r };
}

export const handshakeSuite: MicroSuite = {
  name: 'handshake',
  check() {
    const { i, r } = handshake();
    if (
      Buffer.compare(i.sendInitiator, r.sendInitiator) !== 0 ||
      Buffer.compare(i.sendResponder, r.sendResponder) !== 0
    ) {
      throw new Error('handshake: the two sides derived different transport keys');
    }
    if (Buffer.compare(i.sendInitiator, handshake().i.sendInitiator) === 0) {
      throw new Error('handshake: two handshakes gave the same keys (ephemerals not fresh)');
    }
  },
  cases() {
    // A fixed, valid initiation for the responder-only case.
    writeInitiation(
      WIREGUARD,
      initiator,
      responder.publicKey,
      ssI,
      generateKeyPair(),
      tai64n(Date.now()),
      initMsg,
      0,
    );
    const ssFor = (): Uint8Array => ssR;
    return [
      { name: 'full handshake, both sides', fn: handshake },
      {
        name: 'read initiation (responder)',
        fn: () => readInitiation(WIREGUARD, responder, initMsg, 0, TIMESTAMP_LEN, ssFor),
      },
    ];
  },
};
