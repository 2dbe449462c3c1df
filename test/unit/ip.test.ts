/**
 * Address, prefix and endpoint parsing/formatting (src/tunnel/ip.ts), with the forms `wg` and
 * wireguard-go print (RFC 5952 IPv6, ::ffff:a.b.c.d for mapped), and the IP header peeks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  endpointFromBytes,
  formatAddress,
  formatEndpoint,
  formatPrefix,
  ipPacketLength,
  ipVersion,
  maskPrefix,
  parseAddress,
  parseEndpoint,
  parsePrefix,
  ReceivedEndpoint,
  sameEndpoint,
} from '../../src/tunnel/ip.js';
import { WgError } from '../../src/errors.js';

function bytes(s: string): number[] {
  const b = parseAddress(s);
  assert.ok(b, `should parse: ${s}`);
  return [...b];
}

function isWgError(code: string, field: string): (e: unknown) => boolean {
  return (e) => e instanceof WgError && e.code === code && e.field === field;
}

test('IPv4 addresses parse to 4 bytes', () => {
  assert.deepEqual(bytes('0.0.0.0'), [0, 0, 0, 0]);
  assert.deepEqual(bytes('192.168.1.254'), [192, 168, 1, 254]);
  assert.deepEqual(bytes('255.255.255.255'), [255, 255, 255, 255]);
});

test('invalid IPv4 addresses are rejected', () => {
  for (const s of [
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.1.1.1',
    '1.2.3.-1',
    '01.2.3.4', // leading zeros are ambiguous (octal in inet_aton)
    '1.2.3.4 ',
    ' 1.2.3.4',
    '1.2..4',
    'a.b.c.d',
    '1.2.3.0x4',
    '1234.1.1.1',
  ]) {
    assert.equal(parseAddress(s), null, JSON.stringify(s));
  }
});

test('IPv6 addresses parse in all their forms', () => {
  const loop = [...new Array<number>(15).fill(0), 1];
  assert.deepEqual(bytes('::1'), loop);
  assert.deepEqual(bytes('0:0:0:0:0:0:0:1'), loop);
  assert.deepEqual(bytes('::'), new Array<number>(16).fill(0));
  assert.deepEqual(bytes('2001:DB8::1'), bytes('2001:db8:0:0:0:0:0:1'));
  assert.deepEqual(bytes('1:2:3:4:5:6:7::'), [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0]);
  assert.deepEqual(bytes('::2:3:4:5:6:7:8'), [0, 0, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
  assert.deepEqual(bytes('fe80::1:2'), [0xfe, 0x80, ...new Array<number>(10).fill(0), 0, 1, 0, 2]);
  assert.deepEqual(bytes('::ffff:192.0.2.1'), [
    ...new Array<number>(10).fill(0),
    255,
    255,
    192,
    0,
    2,
    1,
  ]);
  assert.deepEqual(bytes('64:ff9b::192.0.2.1'), bytes('64:ff9b::c000:201'));
  assert.deepEqual(bytes('1:2:3:4:5:6:1.2.3.4'), bytes('1:2:3:4:5:6:102:304'));
});

test('invalid IPv6 addresses are rejected', () => {
  for (const s of [
    ':',
    ':::',
    '1::2::3',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7:8::',
    '::1:2:3:4:5:6:7:8',
    '1:2:3:4:5:6::1.2.3.4', // 6 + 2 words leave nothing for '::'
    '12345::',
    'g::1',
    ':1::',
    '1::2:',
    'fe80::1%eth0', // zone ids are never valid in WireGuard config
    '::1.2.3', // truncated embedded IPv4
    '::1.2.3.4:5', // embedded IPv4 must come last
    '1.2.3.4::', // ... of the whole address, not of the part before '::'
    '1:1.2.3.4::5',
    '[::1]',
  ]) {
    assert.equal(parseAddress(s), null, JSON.stringify(s));
  }
});

test('formatAddress prints dotted quads and RFC 5952 IPv6', () => {
  const cases: [string, string][] = [
    ['10.0.0.1', '10.0.0.1'],
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero is not compressed
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run wins
    ['1:0:0:0:0:0:0:0', '1::'],
    ['fe80::abcd:ef01', 'fe80::abcd:ef01'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'], // mapped IPv4 keeps its dotted form
    ['::ffff:0:0', '::ffff:0.0.0.0'],
    ['::192.0.2.1', '::c000:201'], // deprecated IPv4-compatible: plain hex, as Go prints it
  ];
  for (const [input, want] of cases) {
    const b = parseAddress(input);
    assert.ok(b, input);
    assert.equal(formatAddress(b), want, input);
    assert.deepEqual(parseAddress(want), b, `round trip of ${want}`);
  }
});

test('maskPrefix clears host bits in a copy', () => {
  const b = Uint8Array.of(192, 168, 255, 255);
  assert.deepEqual([...maskPrefix(b, 17)], [192, 168, 128, 0]);
  assert.deepEqual([...maskPrefix(b, 0)], [0, 0, 0, 0]);
  assert.deepEqual([...maskPrefix(b, 32)], [192, 168, 255, 255]);
  assert.deepEqual([...b], [192, 168, 255, 255], 'input untouched');
  const v6 = new Uint8Array(16).fill(0xff);
  assert.deepEqual(
    [...maskPrefix(v6, 65)],
    [...new Array<number>(8).fill(255), 0x80, ...new Array<number>(7).fill(0)],
  );
});

test('parsePrefix masks host bits and defaults to a host prefix', () => {
  const p = parsePrefix('10.1.2.3/8');
  assert.equal(p.family, 4);
  assert.equal(p.cidr, 8);
  assert.deepEqual([...p.bytes], [10, 0, 0, 0]);
  assert.equal(formatPrefix(p), '10.0.0.0/8');
  assert.equal(formatPrefix(parsePrefix('10.1.2.3')), '10.1.2.3/32');
  assert.equal(formatPrefix(parsePrefix('fd00::1')), 'fd00::1/128');
  assert.equal(formatPrefix(parsePrefix('0.0.0.0/0')), '0.0.0.0/0');
  assert.equal(formatPrefix(parsePrefix('::/0')), '::/0');
  assert.equal(formatPrefix(parsePrefix('2001:db8:ffff::1/33')), '2001:db8:8000::/33');
  assert.equal(formatPrefix(parsePrefix('::ffff:10.1.2.3/120')), '::ffff:10.1.2.0/120');
  assert.equal(parsePrefix('fd00::/128').family, 6);
});

test('parsePrefix refuses bad prefixes with ERR_INVALID_CIDR on allowed_ip', () => {
  for (const s of [
    '',
    '/8',
    '10.0.0.0/',
    '10.0.0.0/33',
    '::/129',
    '10.0.0.0/-1',
    '10.0.0.0/8/8',
    '10.0.0.0/a',
    '10.0.0.256/8',
    'example.com/8',
    '10.0.0.0/1000',
  ]) {
    assert.throws(() => parsePrefix(s), isWgError('ERR_INVALID_CIDR', 'allowed_ip'), s);
  }
});

test('parseEndpoint accepts a.b.c.d:port and [v6]:port', () => {
  assert.deepEqual(parseEndpoint('192.0.2.1:51820'), {
    family: 4,
    address: '192.0.2.1',
    port: 51820,
  });
  assert.deepEqual(parseEndpoint('[2001:DB8::0:1]:1'), {
    family: 6,
    address: '2001:db8::1',
    port: 1,
  });
  assert.deepEqual(parseEndpoint('[::ffff:192.0.2.1]:65535'), {
    family: 6,
    address: '::ffff:192.0.2.1',
    port: 65535,
  });
});

test('parseEndpoint refuses bad endpoints with ERR_INVALID_ENDPOINT on endpoint', () => {
  for (const s of [
    '',
    '192.0.2.1',
    '192.0.2.1:',
    '192.0.2.1:65536',
    '192.0.2.1:-1',
    '192.0.2.1:123456',
    '192.0.2.1:http',
    'example.com:51820', // the UAPI takes numeric endpoints only; `wg` resolves names
    '::1:51820', // IPv6 needs brackets
    '[::1]51820',
    '[::1:51820',
    '[192.0.2.1]:x',
    '[fe80::1%eth0]:51820',
  ]) {
    assert.throws(() => parseEndpoint(s), isWgError('ERR_INVALID_ENDPOINT', 'endpoint'), s);
  }
});

test('formatEndpoint round-trips and endpointFromBytes builds canonical endpoints', () => {
  for (const s of ['192.0.2.1:51820', '[2001:db8::1]:1', '[::ffff:192.0.2.1]:65535', '0.0.0.0:0']) {
    assert.equal(formatEndpoint(parseEndpoint(s)), s);
  }
  const e = endpointFromBytes(
    Uint8Array.of(0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 9),
    7,
  );
  assert.deepEqual(e, { family: 6, address: '2001:db8::9', port: 7 });
  assert.equal(formatEndpoint(e), '[2001:db8::9]:7');
});

test('sameEndpoint compares address and port', () => {
  const a = parseEndpoint('192.0.2.1:1');
  assert.equal(sameEndpoint(a, parseEndpoint('192.0.2.1:1')), true);
  assert.equal(sameEndpoint(a, parseEndpoint('192.0.2.1:2')), false);
  assert.equal(sameEndpoint(a, parseEndpoint('192.0.2.2:1')), false);
  assert.equal(sameEndpoint(null, a), false);
  assert.equal(
    sameEndpoint(parseEndpoint('[2001:db8::1]:5'), parseEndpoint('[2001:DB8:0::1]:5')),
    true,
  );
});

function ipv4Header(totalLength: number, size = totalLength): Uint8Array {
  const p = new Uint8Array(size);
  p[0] = 0x45;
  p[2] = totalLength >> 8;
  p[3] = totalLength & 0xff;
  return p;
}

function ipv6Header(payloadLength: number, size = 40 + payloadLength): Uint8Array {
  const p = new Uint8Array(size);
  p[0] = 0x60;
  p[4] = payloadLength >> 8;
  p[5] = payloadLength & 0xff;
  return p;
}

test('ipVersion needs a full header of the claimed version', () => {
  assert.equal(ipVersion(new Uint8Array(0)), 0);
  assert.equal(ipVersion(ipv4Header(20)), 4);
  assert.equal(ipVersion(ipv4Header(20).subarray(0, 19)), 0);
  assert.equal(ipVersion(ipv6Header(0)), 6);
  assert.equal(ipVersion(ipv6Header(0).subarray(0, 39)), 0);
  const other = ipv4Header(40);
  other[0] = 0x55;
  assert.equal(ipVersion(other), 0);
});

test('ipPacketLength reads the header length and bounds it by the buffer', () => {
  // WireGuard pads to 16 bytes: the header length is what is delivered.
  assert.equal(ipPacketLength(ipv4Header(84, 96), 96), 84);
  assert.equal(ipPacketLength(ipv4Header(84, 96), 84), 84);
  assert.equal(ipPacketLength(ipv4Header(84, 96), 83), -1, 'claims more than was received');
  assert.equal(ipPacketLength(ipv4Header(19, 32), 32), -1, 'shorter than an IPv4 header');
  assert.equal(ipPacketLength(ipv4Header(20), 19), -1);
  assert.equal(ipPacketLength(ipv6Header(64, 112), 112), 104);
  assert.equal(ipPacketLength(ipv6Header(0), 40), 40);
  assert.equal(ipPacketLength(ipv6Header(64, 112), 103), -1);
  assert.equal(ipPacketLength(ipv6Header(0), 39), -1);
  assert.equal(ipPacketLength(new Uint8Array(48), 48), -1, 'version 0');
  assert.equal(ipPacketLength(new Uint8Array(0), 0), -1);
});

test('a received endpoint reads as a parsed one: family, port, address text made when asked', () => {
  const v4 = new ReceivedEndpoint(Uint8Array.of(192, 0, 2, 7, 0xca, 0x6c), null);
  assert.deepEqual([v4.family, v4.port, v4.address], [4, 51820, '192.0.2.7']);
  assert.equal(formatEndpoint(v4), '192.0.2.7:51820');
  assert.ok(sameEndpoint(parseEndpoint('192.0.2.7:51820'), v4));
  const bytes = new Uint8Array(18);
  bytes.set(parseAddress('2001:db8::1')!);
  bytes[16] = 0x00;
  bytes[17] = 0x35;
  const local = { address: '2001:db8::2', ifindex: 3 };
  const v6 = new ReceivedEndpoint(bytes, local);
  assert.deepEqual([v6.family, v6.port, v6.local], [6, 53, local]);
  assert.equal(formatEndpoint(v6), '[2001:db8::1]:53');
  assert.equal(v6.address, v6.address, 'the same text each time');
  assert.equal(v6.bytes, bytes, 'the bytes are kept, not copied');
});
