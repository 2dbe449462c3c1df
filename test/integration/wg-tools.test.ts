/**
 * The `wg` tool against each selected daemon implementation (ts and/or go, from WG_TS_IMPLS):
 * setconf/showconf/show/syncconf/set…remove round trips, large configurations (130,000 allowed
 * IPs; 40 peers × 52 allowed IPs) listed back complete, and malformed UAPI input over the raw
 * socket (errno as wireguard-go answers it, earlier lines applied, later lines not).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { formatAddress, parseAddress } from '../../src/tunnel/ip.js';
import {
  Lab,
  genpsk,
  implSkipReason,
  labSkipReason,
  selectedImpls,
  startDaemon,
  uapi,
  uapiErrno,
  wg,
  x25519Keypair,
  type Daemon,
  type Netns,
} from '../../src/lab/index.js';

interface Conf {
  iface: Record<string, string>;
  peers: Map<string, Record<string, string>>;
}

/** Parses a wg config into comparable form: keys as written, AllowedIPs sorted. */
function parseConf(text: string): Conf {
  const conf: Conf = { iface: {}, peers: new Map() };
  let section: Record<string, string> | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) continue;
    if (line === '[Interface]') {
      section = conf.iface;
    } else if (line === '[Peer]') {
      section = {};
    } else {
      const eq = line.indexOf('=');
      const key = line.slice(0, eq).trim();
      const value = line.slice(eq + 1).trim();
      if (!section) throw new Error(`line outside a section: ${line}`);
      if (key === 'PublicKey') conf.peers.set(value, section);
      section[key] = key === 'AllowedIPs' && section[key] ? `${section[key]}, ${value}` : value;
    }
  }
  for (const p of conf.peers.values()) {
    if (p['AllowedIPs'] !== undefined) {
      p['AllowedIPs'] = p['AllowedIPs'].split(/,\s*/).filter(Boolean).sort().join(', ');
      if (p['AllowedIPs'] === '') delete p['AllowedIPs'];
    }
  }
  return conf;
}

/** A comparable view with secrets left out or hashed (never print keys in an assertion diff). */
function publicView(c: Conf): {
  iface: Record<string, string>;
  peers: [string, Record<string, string>][];
} {
  const { PrivateKey: _ignored, ...iface } = c.iface;
  const peers = [...c.peers.entries()].map(([k, p]): [string, Record<string, string>] => {
    const psk = p['PresharedKey'];
    if (psk === undefined) return [k, p];
    const digest = createHash('sha256').update(psk).digest('hex').slice(0, 12);
    return [k, { ...p, PresharedKey: `sha256:${digest}` }];
  });
  return { iface, peers: peers.sort(([a], [b]) => a.localeCompare(b)) };
}

function confText(iface: Record<string, string>, peers: Record<string, string>[]): string {
  const lines = ['[Interface]', ...Object.entries(iface).map(([k, v]) => `${k} = ${v}`)];
  for (const p of peers)
    lines.push('', '[Peer]', ...Object.entries(p).map(([k, v]) => `${k} = ${v}`));
  return `${lines.join('\n')}\n`;
}

function v4(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`;
}

function v6(i: number): string {
  // Canonical text, as wg prints it (no `::0:` groups).
  const raw = parseAddress(`fd00:77::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`)!;
  return `${formatAddress(raw)}/128`;
}

/** Peers with `perPeer` allowed IPs each (alternating v4 /32 and v6 /128), as config text. */
function bigConf(
  privateKey: string,
  peers: number,
  perPeer: number,
): { text: string; want: Map<string, string[]> } {
  const want = new Map<string, string[]>();
  const lines = ['[Interface]', `PrivateKey = ${privateKey}`, 'ListenPort = 51850'];
  let n = 0;
  for (let p = 0; p < peers; p++) {
    const key = x25519Keypair().publicKey;
    const ips: string[] = [];
    for (let i = 0; i < perPeer; i++, n++) ips.push(n % 2 === 0 ? v4(n) : v6(n));
    want.set(key, ips);
    lines.push('', '[Peer]', `PublicKey = ${key}`);
    for (let i = 0; i < ips.length; i += 200)
      lines.push(`AllowedIPs = ${ips.slice(i, i + 200).join(', ')}`);
  }
  return { text: `${lines.join('\n')}\n`, want };
}

/** `wg show <if> allowed-ips` as public key → sorted prefixes. */
async function shownAllowedIps(
  lab: Lab,
  ns: Netns,
  ifname: string,
): Promise<Map<string, string[]>> {
  const out = await wg(lab, ns, ['show', ifname, 'allowed-ips']);
  const got = new Map<string, string[]>();
  for (const line of out.trim().split('\n')) {
    const [key, list] = line.split('\t');
    got.set(key!, list === '(none)' ? [] : list!.split(' ').sort());
  }
  return got;
}

function sortedMap(m: Map<string, string[]>): [string, string[]][] {
  return [...m.entries()]
    .map(([k, v]) => [k, [...v].sort()] as [string, string[]])
    .sort(([a], [b]) => a.localeCompare(b));
}

for (const impl of selectedImpls()) {
  const skip = labSkipReason(['ip', 'wg']) ?? implSkipReason(impl);

  describe(`wg tools against ${impl}`, { skip: skip ?? false }, () => {
    const lab = new Lab('wgti');
    let ns: Netns;
    let d: Daemon;
    let ifname: string;
    let dir: string;
    const me = x25519Keypair();

    const setconf = async (text: string, cmd: 'setconf' | 'syncconf' = 'setconf') => {
      const file = join(dir, `${ifname}.conf`);
      writeFileSync(file, text, { mode: 0o600 });
      await wg(lab, ns, [cmd, ifname, file]);
    };
    const showconf = async () => parseConf(await wg(lab, ns, ['showconf', ifname]));

    before(async () => {
      ns = await lab.netns(lab.next('t'));
      d = await startDaemon(lab, ns, impl, lab.name(lab.next('t')));
      ifname = d.ifname;
      dir = lab.tmpdir();
      await lab.exec(ns, 'ip', ['link', 'set', ifname, 'up']);
    });
    after(() => lab.dispose());

    const p1 = x25519Keypair().publicKey;
    const p2 = x25519Keypair().publicKey;
    const p3 = x25519Keypair().publicKey;
    const p4 = x25519Keypair().publicKey;

    it('setconf then showconf and wg show round trip', async () => {
      const psk = await genpsk(lab);
      const text = confText({ PrivateKey: me.privateKey, ListenPort: '51830', FwMark: '0x2a' }, [
        {
          PublicKey: p1,
          PresharedKey: psk,
          AllowedIPs: '10.1.0.0/16, fd10::/64',
          Endpoint: '192.168.9.1:1234',
          PersistentKeepalive: '25',
        },
        { PublicKey: p2, AllowedIPs: '10.2.0.1/32', Endpoint: '[fd00::9]:4321' },
        { PublicKey: p3 },
      ]);
      await setconf(text);
      const shown = await showconf();
      assert.ok(shown.iface['PrivateKey'] === me.privateKey, 'private key round trips');
      assert.deepEqual(publicView(shown), publicView(parseConf(text)));
      const show = async (...what: string[]) =>
        (await wg(lab, ns, ['show', ifname, ...what])).trim();
      assert.equal(await show('public-key'), me.publicKey);
      assert.equal(await show('listen-port'), '51830');
      assert.equal(await show('fwmark'), '0x2a');
      assert.deepEqual((await show('peers')).split('\n').sort(), [p1, p2, p3].sort());
      const psks = new Map(
        (await show('preshared-keys')).split('\n').map((l) => l.split('\t') as [string, string]),
      );
      assert.ok(psks.get(p1) === psk, 'PSK of p1');
      assert.equal(psks.get(p2), '(none)');
      const eps = new Map(
        (await show('endpoints')).split('\n').map((l) => l.split('\t') as [string, string]),
      );
      assert.deepEqual(
        [eps.get(p1), eps.get(p2), eps.get(p3)],
        ['192.168.9.1:1234', '[fd00::9]:4321', '(none)'],
      );
      const ka = new Map(
        (await show('persistent-keepalive'))
          .split('\n')
          .map((l) => l.split('\t') as [string, string]),
      );
      assert.deepEqual([ka.get(p1), ka.get(p2)], ['25', 'off']);
      assert.match(
        await wg(lab, ns, ['show', 'interfaces']),
        new RegExp(`(^|\\s)${ifname}(\\s|$)`),
      );
      const human = await show();
      assert.match(human, new RegExp(`interface: ${ifname}`));
      assert.match(human, /listening port: 51830/);
      for (const k of [p1, p2, p3]) assert.ok(human.includes(`peer: ${k}`), `wg show lists ${k}`);
      assert.ok(!human.includes(me.privateKey), 'wg show hides the private key');
    });

    it('syncconf applies only the difference and ends equal to the file', async () => {
      // wg syncconf leaves fields a kept peer does not mention (PSK, keepalive): restate them.
      const old = await showconf();
      const text = confText({ PrivateKey: me.privateKey, ListenPort: '51831' }, [
        {
          PublicKey: p1,
          PresharedKey: old.peers.get(p1)?.['PresharedKey'] ?? '',
          AllowedIPs: '10.1.0.0/24, 10.9.0.0/16',
          Endpoint: '192.168.9.1:1234',
          PersistentKeepalive: '5',
        },
        { PublicKey: p4, AllowedIPs: '10.4.0.0/16' },
      ]);
      await setconf(text, 'syncconf');
      assert.deepEqual(publicView(await showconf()), publicView(parseConf(text)));
    });

    it('set … peer X remove drops just that peer', async () => {
      await wg(lab, ns, ['set', ifname, 'peer', p1, 'remove']);
      const c = await showconf();
      assert.deepEqual([...c.peers.keys()], [p4]);
      assert.equal(c.peers.get(p4)?.['AllowedIPs'], '10.4.0.0/16');
      // Its prefixes are gone from the trie: another peer can take one without conflict.
      await wg(lab, ns, ['set', ifname, 'peer', p2, 'allowed-ips', '10.1.0.0/24']);
      assert.equal((await showconf()).peers.get(p2)?.['AllowedIPs'], '10.1.0.0/24');
    });

    it('40 peers × 52 allowed IPs listed back complete', async () => {
      const { text, want } = bigConf(me.privateKey, 40, 52);
      await setconf(text);
      assert.deepEqual(sortedMap(await shownAllowedIps(lab, ns, ifname)), sortedMap(want));
      const dump = (await wg(lab, ns, ['show', ifname, 'dump'])).trim().split('\n');
      assert.equal(dump.length, 41, 'interface line + 40 peers');
    });

    it('130,000 allowed IPs via setconf, listed back complete within seconds', async (t) => {
      const { text, want } = bigConf(me.privateKey, 4, 32_500);
      const t0 = Date.now();
      await setconf(text);
      const t1 = Date.now();
      const got = await shownAllowedIps(lab, ns, ifname);
      const t2 = Date.now();
      let total = 0;
      for (const v of got.values()) total += v.length;
      assert.equal(total, 130_000);
      assert.deepEqual(sortedMap(got), sortedMap(want));
      t.diagnostic(
        `${impl}: setconf 130000 allowed IPs ${t1 - t0} ms, wg show allowed-ips ${t2 - t1} ms`,
      );
      assert.ok(t2 - t0 < 30_000, `setconf + show took ${t2 - t0} ms`);
      await setconf(confText({ PrivateKey: me.privateKey }, []));
    });

    describe('malformed UAPI set over the raw socket', () => {
      const peer = 'ab'.repeat(32);
      const cases: { name: string; bad: string[]; errno: number; peerCreated?: boolean }[] = [
        { name: 'line without =', bad: ['listen_port'], errno: -71 },
        { name: 'bad hex key', bad: ['private_key=zz'], errno: -22 },
        {
          name: 'bad CIDR',
          bad: [`public_key=${peer}`, 'allowed_ip=10.0.0.0/33'],
          errno: -22,
          peerCreated: true,
        },
        { name: 'unknown key', bad: ['foo=bar'], errno: -22 },
      ];
      let port = 40_000;
      for (const c of cases) {
        it(`${c.name}: errno ${c.errno}, earlier lines applied, later ones not`, async () => {
          await setconf(
            confText({ PrivateKey: me.privateKey, ListenPort: '39999' }, [
              { PublicKey: p4, AllowedIPs: '10.4.0.0/16' },
            ]),
          );
          const before = await uapi(ifname, 'get=1\n\n');
          port += 1;
          const req = [
            'set=1',
            `listen_port=${port}`,
            ...c.bad,
            'listen_port=39000',
            'fwmark=7',
            '',
          ];
          const reply = await uapi(ifname, `${req.join('\n')}\n`);
          assert.equal(uapiErrno(reply), c.errno, `reply: ${reply.trim()}`);
          const afterGet = await uapi(ifname, 'get=1\n\n');
          assert.equal(uapiErrno(afterGet), 0);
          // Expected: the earlier listen_port applied, nothing after the bad line, else unchanged.
          const strip = (s: string) =>
            s
              .split('\n')
              .filter((l) => l && !l.startsWith('private_key=') && !l.startsWith('last_handshake'))
              .map((l) => (l.startsWith('listen_port=') ? `listen_port=${'#'}` : l));
          const gotPort = /(?:^|\n)listen_port=(\d+)/.exec(afterGet)?.[1];
          assert.equal(gotPort, `${port}`, 'the line before the bad one was applied');
          assert.doesNotMatch(afterGet, /fwmark=7/, 'lines after the bad one were not applied');
          if (c.peerCreated) {
            assert.match(
              afterGet,
              new RegExp(`public_key=${peer}`),
              'peer line before the bad one applied',
            );
          } else {
            assert.deepEqual(strip(afterGet), strip(before));
          }
        });
      }
    });
  });
}
