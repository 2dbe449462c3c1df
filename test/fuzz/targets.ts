// The fuzz targets (issue 6 §1): message decoding, a Device's whole inbound datagram path and
// its outbound IP path, the UAPI set parser, the config-file parser and IP text/header parsing.
// Each runs `numRuns` fast-check cases from a seed and throws (with the shrunk counterexample)
// when an exception escapes, a drop goes uncounted or state grows past its bound.
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { STAGED_PACKETS_MAX } from '../../src/constants.js';
import { WgError } from '../../src/errors.js';
import { classify, readCounter, readU32 } from '../../src/noise/messages.js';
import { CookieChecker } from '../../src/noise/cookie.js';
import { parseSet } from '../../src/control/uapi.js';
import { parseConfigFile } from '../../src/control/config-file.js';
import {
  formatAddress,
  ipPacketLength,
  ipVersion,
  parseAddress,
  parseEndpoint,
  parsePrefix,
  type Endpoint,
} from '../../src/tunnel/ip.js';
import { ipv4, ipv6, World, type TestNode } from '../unit/harness.js';
import { mutate, mutationArb, mutateText, textMutationArb } from './mutate.js';

export interface FuzzReport {
  readonly target: string;
  readonly cases: number;
  readonly ms: number;
  /** Target-specific tallies (outcomes by kind), for the report. */
  readonly tally: Record<string, number>;
}

export interface FuzzTarget {
  readonly name: string;
  /** Relative cost of one case (the runner scales numRuns by 1/cost in smoke mode). */
  readonly cost: number;
  run(numRuns: number, seed: number): FuzzReport;
}

function bump(t: Record<string, number>, k: string): void {
  t[k] = (t[k] ?? 0) + 1;
}

function onlyWgError(fn: () => unknown, tally: Record<string, number>): void {
  try {
    fn();
    bump(tally, 'ok');
  } catch (e) {
    if (!(e instanceof WgError)) throw e;
    bump(tally, `error:${e.code}`);
  }
}

function timed(
  name: string,
  numRuns: number,
  seed: number,
  body: (t: Record<string, number>) => fc.IPropertyWithHooks<unknown> | fc.IProperty<unknown>,
): FuzzReport {
  const tally: Record<string, number> = {};
  const t0 = Date.now();
  fc.assert(body(tally), { numRuns, seed, endOnFailure: false });
  return { target: name, cases: numRuns, ms: Date.now() - t0, tally };
}

// ---- messages -----------------------------------------------------------------------------

const SIZES: Record<string, number> = { initiation: 148, response: 92, cookie: 64 };

function sampleMessages(): Uint8Array[] {
  const mk = (type: number, len: number) => {
    const d = new Uint8Array(randomBytes(len));
    d.set([type, 0, 0, 0]);
    return d;
  };
  return [mk(1, 148), mk(2, 92), mk(3, 64), mk(4, 32), mk(4, 1452)];
}

export const messagesTarget: FuzzTarget = {
  name: 'messages',
  cost: 1,
  run(numRuns, seed) {
    const samples = sampleMessages();
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.tuple(fc.constantFrom(...samples), mutationArb).map(([b, m]) => mutate(b, m)),
    );
    return timed('messages', numRuns, seed, (tally) =>
      fc.property(input, (d) => {
        const k = classify(d);
        bump(tally, k);
        if (k in SIZES && d.length !== SIZES[k]) throw new Error(`${k} of length ${d.length}`);
        if (k === 'transport' && d.length < 32) throw new Error('short transport accepted');
        if (['initiation', 'response', 'cookie', 'transport'].includes(k)) {
          if (d[1] !== 0 || d[2] !== 0 || d[3] !== 0 || d[0]! < 1 || d[0]! > 4) {
            throw new Error('bad type accepted');
          }
        }
        if (k === 'transport') {
          const c = readCounter(d, 8);
          if (!(c === -1 || (Number.isSafeInteger(c) && c >= 0))) throw new Error(`counter ${c}`);
          if (readU32(d, 4) < 0) throw new Error('negative index');
        }
      }),
    );
  },
};

// ---- Device, inbound ----------------------------------------------------------------------

interface DeviceRig {
  w: World;
  a: TestNode;
  b: TestNode;
  corpus: Uint8Array[];
  corpusKeys: Set<string>;
  sources: Endpoint[];
}

/** Two devices with a PSK, a completed handshake and data both ways; the datagrams a sent to b
 * (initiation, data, keepalives), b's response and a valid cookie reply to b form the corpus. */
function deviceRig(): DeviceRig {
  const w = new World();
  const a = w.node('a', '192.0.2.1:51820');
  const b = w.node('b', '192.0.2.2:51820');
  const psk = new Uint8Array(randomBytes(32));
  a.peer(b, ['10.0.0.2/32', 'fd00::2/128'], { psk });
  b.peer(a, ['10.0.0.1/32', 'fd00::1/128'], { psk });
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'hello'));
  w.pump();
  b.send(ipv4('10.0.0.2', '10.0.0.1', 'back'));
  w.pump();
  const v6 = (s: string) => parseAddress(s)!;
  a.send(ipv6(v6('fd00::1'), v6('fd00::2'), 'six'));
  a.send(ipv4('10.0.0.1', '10.0.0.9', 'no route at b')); // dropped at a: no route
  a.send(ipv4('10.0.0.1', '10.0.0.2', 'x'.repeat(1300)));
  w.pump();
  w.advance(12_000); // keepalives
  const corpus = w.log.map((d) => d.data);
  const response = w.log.find((d) => d.data[0] === 2)!.data;
  const checker = new CookieChecker(a.publicKey);
  const src = new Uint8Array([192, 0, 2, 1, 0xca, 0x6c]);
  const rng = (n: number) => new Uint8Array(randomBytes(n));
  corpus.push(
    checker.createReply(response, readU32(response, 4), checker.cookieFor(src, w.now, rng), rng),
  );
  w.queue = [];
  const sources = [
    '192.0.2.1:51820',
    '192.0.2.1:4444',
    '198.51.100.7:9',
    '[2001:db8::1]:51820',
  ].map(parseEndpoint);
  return {
    w,
    a,
    b,
    corpus,
    corpusKeys: new Set(corpus.map((c) => Buffer.from(c).toString('hex'))),
    sources,
  };
}

function dropSum(n: TestNode): number {
  let s = 0;
  for (const v of Object.values(n.device.drops)) s += v;
  return s;
}

export const deviceInboundTarget: FuzzTarget = {
  name: 'device-inbound',
  cost: 2,
  run(numRuns, seed) {
    const rig = deviceRig();
    const { w, b } = rig;
    const input = fc.tuple(
      fc.oneof(
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
        {
          weight: 5,
          arbitrary: fc
            .tuple(fc.constantFrom(...rig.corpus), mutationArb)
            .map(([c, m]) => mutate(c, m)),
        },
      ),
      fc.nat({ max: rig.sources.length - 1 }),
      fc.nat({ max: 3 }),
    );
    let step = 0;
    return timed('device-inbound', numRuns, seed, (tally) =>
      fc.property(input, ([d, si, dt]) => {
        w.now += dt;
        if (++step % 256 === 0) {
          b.device.tick(w.now, b.out);
          w.queue = [];
        }
        if (b.delivered.length > 1024) b.delivered.length = 0;
        if (b.drops.length > 1024) b.drops.length = 0;
        const drops0 = dropSum(b);
        const delivered0 = b.delivered.length;
        const sent0 = w.queue.length;
        b.device.receiveDatagram(d, rig.sources[si]!, w.now, b.out);
        const drops = dropSum(b) - drops0;
        const delivered = b.delivered.length - delivered0;
        const sent = w.queue.length - sent0;
        w.queue = [];
        if (drops > 1) throw new Error(`one datagram counted as ${drops} drops`);
        if (delivered > 1) throw new Error(`one datagram delivered ${delivered} packets`);
        if (drops === 1) bump(tally, `drop:${b.drops.at(-1)}`);
        else if (delivered === 1) bump(tally, 'delivered');
        else if (sent > 0) bump(tally, 'handshake-reply');
        else if (rig.corpusKeys.has(Buffer.from(d).toString('hex'))) bump(tally, 'valid-silent');
        else
          throw new Error(
            `datagram neither dropped, delivered nor answered (type ${d[0]}, ${d.length} B)`,
          );
        if (b.device.peers.size !== 1) throw new Error('peer set changed');
        if (b.device.indexCount > 6) throw new Error(`index table grew to ${b.device.indexCount}`);
        for (const p of b.device.peers.values()) {
          if (p.staged.length > STAGED_PACKETS_MAX) throw new Error('staged queue unbounded');
        }
      }),
    );
  },
};

// ---- Device, outbound (IP header parsing on the TUN side) ---------------------------------

export const deviceOutboundTarget: FuzzTarget = {
  name: 'device-outbound',
  cost: 2,
  run(numRuns, seed) {
    const rig = deviceRig();
    const { w, a } = rig;
    const v6 = (s: string) => parseAddress(s)!;
    const bases = [
      ipv4('10.0.0.1', '10.0.0.2', 'data'),
      ipv4('10.0.0.1', '10.0.0.3', 'nope'),
      ipv6(v6('fd00::1'), v6('fd00::2'), 'six'),
      new Uint8Array(0),
    ];
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 100 }),
      fc.tuple(fc.constantFrom(...bases), mutationArb).map(([c, m]) => mutate(c, m)),
    );
    return timed('device-outbound', numRuns, seed, (tally) =>
      fc.property(input, (p) => {
        w.now += 1;
        const peer = [...a.device.peers.values()][0]!;
        if (a.drops.length > 1024) a.drops.length = 0;
        const drops0 = dropSum(a);
        const staged0 = peer.staged.length;
        const sent0 = w.queue.length;
        a.device.sendPacket(p, w.now, a.out);
        const drops = dropSum(a) - drops0;
        const sent = w.queue.length - sent0;
        w.queue = [];
        if (drops === 1) bump(tally, `drop:${a.drops.at(-1)}`);
        else if (sent > 0) bump(tally, 'sent');
        else if (peer.staged.length > staged0) bump(tally, 'staged');
        else throw new Error(`packet of ${p.length} B neither sent, staged nor dropped`);
        if (peer.staged.length > STAGED_PACKETS_MAX) throw new Error('staged queue unbounded');
      }),
    );
  },
};

// ---- UAPI set parser ------------------------------------------------------------------------

const HEX = (n: number) => Buffer.from(randomBytes(n)).toString('hex');
const UAPI_KEYS = [
  'private_key',
  'listen_port',
  'fwmark',
  'replace_peers',
  'public_key',
  'remove',
  'update_only',
  'preshared_key',
  'endpoint',
  'persistent_keepalive_interval',
  'replace_allowed_ips',
  'allowed_ip',
  'protocol_version',
  'bogus',
];
const UAPI_VALUES = [
  HEX(32),
  '0'.repeat(64),
  'true',
  '51820',
  '65536',
  '-1',
  '0',
  '1',
  '2',
  '0x10',
  '192.0.2.1:51820',
  '[2001:db8::1]:1',
  '[::1]',
  '10.0.0.0/8',
  '-10.0.0.0/8',
  '::/0',
  '10.0.0.1/33',
  'fd00::/129',
  '',
  ' 1',
  '4294967295',
  '4294967296',
  '1e3',
];

function validUapiBody(): string {
  return [
    `private_key=${HEX(32)}`,
    'listen_port=51820',
    'fwmark=0',
    'replace_peers=true',
    `public_key=${HEX(32)}`,
    `preshared_key=${HEX(32)}`,
    'endpoint=192.0.2.1:51820',
    'persistent_keepalive_interval=25',
    'replace_allowed_ips=true',
    'allowed_ip=10.0.0.0/24',
    'allowed_ip=fd00::/64',
    'protocol_version=1',
    `public_key=${HEX(32)}`,
    'remove=true',
    '',
  ].join('\n');
}

export const uapiTarget: FuzzTarget = {
  name: 'uapi-set',
  cost: 1,
  run(numRuns, seed) {
    const base = validUapiBody();
    const line = fc
      .tuple(
        fc.constantFrom(...UAPI_KEYS),
        fc.oneof(fc.constantFrom(...UAPI_VALUES), fc.string({ maxLength: 70 })),
      )
      .map(([k, v]) => `${k}=${v}`);
    const input = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.array(line, { maxLength: 12 }).map((l) => l.join('\n')),
      textMutationArb.map((m) => mutateText(base, m)),
    );
    return timed('uapi-set', numRuns, seed, (tally) =>
      fc.property(input, (body) => {
        const r = parseSet(body);
        if (r.error) {
          if (!(r.error.errno > 0) || !(r.error.line >= 1))
            throw new Error(`bad error ${JSON.stringify(r.error)}`);
          bump(tally, `errno:${r.error.errno}`);
        } else bump(tally, 'ok');
        for (const op of r.ops) {
          if (op.key === 'listen_port' && !(op.value >= 0 && op.value <= 65535))
            throw new Error('port out of range');
          if (op.key === 'public_key' && op.value.length !== 32) throw new Error('short key');
          if (
            op.key === 'allowed_ip' &&
            !(op.value.cidr >= 0 && op.value.cidr <= (op.value.family === 4 ? 32 : 128))
          )
            throw new Error('bad cidr');
        }
      }),
    );
  },
};

// ---- config file parser --------------------------------------------------------------------

const B64 = (n: number) => Buffer.from(randomBytes(n)).toString('base64');

function validConfig(): string {
  return `[Interface]\nPrivateKey = ${B64(32)}\nListenPort = 51820\nAddress = 10.0.0.1/24, fd00::1/64\nMTU = 1420\nFwMark = 0x1234\n\n# peer\n[Peer]\nPublicKey = ${B64(32)}\nPresharedKey = ${B64(32)}\nAllowedIPs = 10.0.0.2/32, fd00::2/128\nEndpoint = peer.example:51820\nPersistentKeepalive = 25\n\n[Peer]\nPublicKey = ${B64(32)}\nAllowedIPs = 0.0.0.0/0\nEndpoint = [2001:db8::1]:1\n`;
}

export const configTarget: FuzzTarget = {
  name: 'config-file',
  cost: 1,
  run(numRuns, seed) {
    const base = validConfig();
    const input = fc.oneof(
      fc.string({ maxLength: 300 }),
      textMutationArb.map((m) => mutateText(base, m)),
      fc.array(textMutationArb, { maxLength: 4 }).map((ms) => ms.reduce(mutateText, base)),
    );
    return timed('config-file', numRuns, seed, (tally) =>
      fc.property(input, (text) => onlyWgError(() => parseConfigFile(text, 'fuzz.conf'), tally)),
    );
  },
};

// ---- IP addresses, prefixes, endpoints and headers -----------------------------------------

export const ipTarget: FuzzTarget = {
  name: 'ip',
  cost: 1,
  run(numRuns, seed) {
    const texts = [
      '10.0.0.1',
      '255.255.255.255',
      '::',
      '::1',
      'fd00::1:2',
      '::ffff:1.2.3.4',
      '2001:db8::/32',
      '10.0.0.0/8',
      '192.0.2.1:51820',
      '[2001:db8::1]:65535',
      '1.2.3.4/32',
    ];
    const text = fc.oneof(
      fc.string({ maxLength: 50 }),
      fc.tuple(fc.constantFrom(...texts), textMutationArb).map(([t, m]) => mutateText(t, m)),
    );
    const headers = [
      ipv4('10.0.0.1', '10.0.0.2', 'x'),
      ipv6(new Uint8Array(16), new Uint8Array(16), 'y'),
    ];
    const header = fc.oneof(
      fc.uint8Array({ maxLength: 80 }),
      fc.tuple(fc.constantFrom(...headers), mutationArb).map(([h, m]) => mutate(h, m)),
    );
    return timed('ip', numRuns, seed, (tally) =>
      fc.property(text, header, (s, h) => {
        const bytes = parseAddress(s);
        if (bytes) {
          if (bytes.length !== 4 && bytes.length !== 16) throw new Error('address length');
          const again = parseAddress(formatAddress(bytes));
          if (!again || Buffer.compare(again, bytes) !== 0) throw new Error(`round trip of ${s}`);
          bump(tally, 'address');
        }
        onlyWgError(() => parsePrefix(s), tally);
        onlyWgError(() => parseEndpoint(s), tally);
        const v = ipVersion(h);
        if (v !== 0 && v !== 4 && v !== 6) throw new Error('version');
        const len = ipPacketLength(h, h.length);
        if (len !== -1 && !(len >= 20 && len <= h.length)) throw new Error(`length ${len}`);
      }),
    );
  },
};

export const TARGETS: readonly FuzzTarget[] = [
  messagesTarget,
  deviceInboundTarget,
  deviceOutboundTarget,
  uapiTarget,
  configTarget,
  ipTarget,
];
