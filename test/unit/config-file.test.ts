/**
 * The wg-quick file format: what is accepted (case-insensitive keys, comments, lists, off, hex
 * fwmark, host names), what is refused with file:line, and the UAPI ops it turns into.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WgError } from '../../src/errors.js';
import { parseConfigFile, toUapiOps } from '../../src/control/config-file.js';
import { isBase64Key, keyFromBase64 } from '../../src/noise/keys.js';
import { parseSet, serializeSet } from '../../src/control/uapi.js';
import { formatPrefix, parseEndpoint } from '../../src/tunnel/ip.js';

const k = (b: number) => Buffer.from(new Uint8Array(32).fill(b)).toString('base64');
const PRIV = k(0x40);
const PUB1 = k(1);
const PUB2 = k(2);

const GOOD = `# a comment
[Interface]
PrivateKey = ${PRIV}
listenport=51820   # trailing comment
FwMark = 0x1234
Address = 10.0.0.1/24, fd00::1/64
ADDRESS = 10.0.1.1
MTU = 1380

[Peer]
PublicKey = ${PUB1}
PresharedKey = ${k(9)}
AllowedIPs = 10.0.0.2/32, 10.8.0.0/16
AllowedIPs = ::/0
Endpoint = 192.0.2.1:51820
PersistentKeepalive = 25

[peer]
PublicKey = ${PUB2}
Endpoint = [2001:db8::1]:1234
PersistentKeepalive = off
`;

function refuses(text: string, line: number, pattern: RegExp, field?: string): void {
  assert.throws(
    () => parseConfigFile(text, 'wg0.conf'),
    (e: unknown) => {
      assert.ok(e instanceof WgError, String(e));
      assert.equal(e.code, 'ERR_INVALID_CONFIG');
      assert.ok(e.message.startsWith(`wg0.conf:${line}: `), e.message);
      assert.match(e.message, pattern);
      if (field !== undefined) assert.equal(e.field, field);
      return true;
    },
  );
}

describe('parseConfigFile', () => {
  it('reads every supported key', () => {
    const cfg = parseConfigFile(GOOD, 'wg0.conf');
    assert.deepEqual(cfg.interface.privateKey, new Uint8Array(32).fill(0x40));
    assert.equal(cfg.interface.listenPort, 51820);
    assert.equal(cfg.interface.fwmark, 0x1234);
    assert.equal(cfg.interface.mtu, 1380);
    assert.deepEqual(
      cfg.interface.addresses.map((a) => [a.text, a.cidr, a.address.length]),
      [
        ['10.0.0.1/24', 24, 4],
        ['fd00::1/64', 64, 16],
        ['10.0.1.1', 32, 4],
      ],
    );
    assert.equal(cfg.peers.length, 2);
    const [p1, p2] = cfg.peers;
    assert.deepEqual(p1!.publicKey, new Uint8Array(32).fill(1));
    assert.deepEqual(p1!.presharedKey, new Uint8Array(32).fill(9));
    assert.deepEqual(p1!.allowedIps.map(formatPrefix), ['10.0.0.2/32', '10.8.0.0/16', '::/0']);
    assert.deepEqual(p1!.endpoint, { host: '192.0.2.1', port: 51820 });
    assert.equal(p1!.persistentKeepalive, 25);
    assert.deepEqual(p2!.endpoint, { host: '2001:db8::1', port: 1234 });
    assert.equal(p2!.persistentKeepalive, 0);
    assert.equal(p2!.presharedKey, null);
    assert.deepEqual(p2!.allowedIps, []);
  });

  it('accepts host names, FwMark off, and leaves optional keys null', () => {
    const cfg = parseConfigFile(
      `[Interface]\nPrivateKey=${PRIV}\nFwMark = off\n[Peer]\nPublicKey=${PUB1}\nEndpoint = vpn.example.com:443\n`,
      'x.conf',
    );
    assert.equal(cfg.interface.fwmark, 0);
    assert.equal(cfg.interface.listenPort, null);
    assert.equal(cfg.interface.mtu, null);
    assert.deepEqual(cfg.peers[0]!.endpoint, { host: 'vpn.example.com', port: 443 });
    assert.equal(cfg.peers[0]!.persistentKeepalive, null);
  });

  const head = `[Interface]\nPrivateKey = ${PRIV}\n`;
  const peer = `[Peer]\nPublicKey = ${PUB1}\n`;
  const cases: [string, string, number, RegExp, string?][] = [
    [
      'DNS',
      `${head}DNS = 1.1.1.1\n`,
      3,
      /DNS is not supported by wireguard-ts up; use wg-quick/,
      'DNS',
    ],
    ['PostUp', `${head}PostUp = iptables -A\n`, 3, /PostUp is not supported.*wg-quick/, 'PostUp'],
    ['Table', `${head}table = off\n`, 3, /table is not supported/, 'table'],
    ['SaveConfig', `${head}SaveConfig = true\n`, 3, /SaveConfig is not supported/],
    ['unknown key', `${head}Foo = 1\n`, 3, /unknown key Foo/, 'Foo'],
    ['unknown section', `${head}[Peers]\n`, 3, /unknown section/],
    ['key before a section', `PrivateKey = ${PRIV}\n`, 1, /outside of an \[Interface\]/],
    ['no "="', `${head}ListenPort\n`, 3, /Key = Value/],
    [
      'bad private key',
      `[Interface]\nPrivateKey = abc\n`,
      2,
      /PrivateKey is not a valid key/,
      'PrivateKey',
    ],
    [
      '33-byte key',
      `[Interface]\nPrivateKey = ${Buffer.alloc(33).toString('base64')}\n`,
      2,
      /not a valid key/,
    ],
    [
      'stray bits in key',
      `[Interface]\nPrivateKey = ${PRIV.slice(0, 42)}B=\n`,
      2,
      /not a valid key/,
    ],
    ['port too big', `${head}ListenPort = 65536\n`, 3, /bad port/, 'ListenPort'],
    ['negative port', `${head}ListenPort = -1\n`, 3, /bad port/],
    ['MTU too small', `${head}MTU = 60\n`, 3, /below 68/],
    ['bad fwmark', `${head}FwMark = 0xZZ\n`, 3, /bad fwmark/],
    ['bad address', `${head}Address = 10.0.0.300/24\n`, 3, /bad address/, 'Address'],
    ['address prefix too long', `${head}Address = 10.0.0.1/33\n`, 3, /bad prefix length/],
    ['empty value', `${head}ListenPort =\n`, 3, /has no value/],
    [
      'bad CIDR',
      `${head}${peer}AllowedIPs = 10.0.0.0/33\n`,
      5,
      /AllowedIPs: bad CIDR "10.0.0.0\/33"/,
      'AllowedIPs',
    ],
    [
      'bad CIDR in a list',
      `${head}${peer}AllowedIPs = 10.0.0.0/8, nope/8\n`,
      5,
      /bad CIDR "nope\/8"/,
    ],
    ['endpoint port 0', `${head}${peer}Endpoint = 1.2.3.4:0\n`, 5, /bad port/, 'Endpoint'],
    ['endpoint port too big', `${head}${peer}Endpoint = 1.2.3.4:65536\n`, 5, /bad port/],
    ['endpoint without port', `${head}${peer}Endpoint = 1.2.3.4\n`, 5, /needs host:port/],
    ['unbracketed v6 endpoint', `${head}${peer}Endpoint = fd00::1:51820\n`, 5, /needs brackets/],
    ['bad bracketed v6', `${head}${peer}Endpoint = [1.2.3.4]:5\n`, 5, /bad IPv6/],
    ['bad keepalive', `${head}${peer}PersistentKeepalive = 65536\n`, 5, /bad interval/],
    [
      'peer without key',
      `${head}[Peer]\nAllowedIPs = 10.0.0.0/8\n`,
      3,
      /\[Peer\] has no PublicKey/,
      'PublicKey',
    ],
    ['duplicate peer', `${head}${peer}${peer}`, 5, /duplicate peer .*first at line 3/, 'PublicKey'],
    ['no private key', `[Interface]\nListenPort = 1\n`, 0, /no PrivateKey/, 'PrivateKey'],
    ['no interface', `${peer}`, 0, /no \[Interface\]/],
  ];
  for (const [name, text, line, pattern, field] of cases) {
    it(`refuses: ${name}`, () => refuses(text, line, pattern, field));
  }

  it('decodes only canonical 32-byte base64 keys', () => {
    assert.deepEqual(keyFromBase64(PUB1), new Uint8Array(32).fill(1));
    assert.equal(isBase64Key(PUB1), true);
    assert.equal(isBase64Key(PUB1.slice(0, -1)), false);
    assert.equal(isBase64Key(`${PUB1} `), false);
    assert.throws(() => keyFromBase64(PUB1.slice(0, -1)), { code: 'ERR_INVALID_KEY' });
  });
});

describe('toUapiOps', () => {
  it('produces what `wg setconf` sends, with resolved endpoints', () => {
    const cfg = parseConfigFile(GOOD, 'wg0.conf');
    const ops = toUapiOps(cfg, [
      parseEndpoint('192.0.2.1:51820'),
      parseEndpoint('[2001:db8::1]:1234'),
    ]);
    const text = serializeSet(ops);
    const hex = (b: number) => Buffer.alloc(32, b).toString('hex');
    assert.equal(
      text,
      [
        'set=1',
        `private_key=${hex(0x40)}`,
        'listen_port=51820',
        'fwmark=4660',
        'replace_peers=true',
        `public_key=${hex(1)}`,
        `preshared_key=${hex(9)}`,
        'endpoint=192.0.2.1:51820',
        'persistent_keepalive_interval=25',
        'replace_allowed_ips=true',
        'allowed_ip=10.0.0.2/32',
        'allowed_ip=10.8.0.0/16',
        'allowed_ip=::/0',
        `public_key=${hex(2)}`,
        'endpoint=[2001:db8::1]:1234',
        'persistent_keepalive_interval=0',
        'replace_allowed_ips=true',
        '',
        '',
      ].join('\n'),
    );
    assert.equal(parseSet(text.slice(6)).error, null);
  });

  it('omits listen_port, fwmark and endpoints that are not given', () => {
    const cfg = parseConfigFile(
      `[Interface]\nPrivateKey=${PRIV}\n[Peer]\nPublicKey=${PUB1}\n`,
      'a.conf',
    );
    assert.deepEqual(
      toUapiOps(cfg, [null]).map((o) => o.key),
      ['private_key', 'replace_peers', 'public_key', 'replace_allowed_ips'],
    );
  });
});
