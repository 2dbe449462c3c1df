/**
 * Handshake floods from more than 65,536 distinct sources, IPv4 addresses and IPv6 /64s (the
 * rate limiters' table bound), with mac2 all zero and with random mac2 values (each of which
 * costs the responder mac1, a cookie, a mac2 check and a cookie reply), at the sender's full
 * rate. One process sends them all: it writes raw IPv4/IPv6 + UDP packets with arbitrary sources
 * into a TUN device of its namespace, which forwards them (rp_filter off) to the responder; the
 * responder routes its cookie replies back there.
 *
 * At the sender's full rate and at a set one (WG_TS_FLOOD_SOURCES_RATE, default 5,000/s): the
 * daemon survives, its resident memory stays bounded (the limiters' tables are capped at 65,536
 * sources each), strangers get at most the device-wide 4,096 cookie replies/s, and a legitimate
 * wireguard-ts peer at its configured endpoint completes its handshake within 5 s: past that
 * budget a stranger's message without mac2 is dropped before any hashing (one with random mac2
 * after its mac2 check alone), so the daemon reads as fast as the flood comes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Lab,
  cpuSecondsOf,
  forgetSession,
  handshakeOnPing,
  implSkipReason,
  labSkipReason,
  makePair,
  pidAlive,
  waitPing,
  rssKiB,
  runBlaster,
  statsDelta,
  type Pair,
} from '../../src/lab/index.js';
import { uapiStats } from '../../src/control/uapi-client.js';

const skip = labSkipReason(['ip', 'wg', 'ping']) ?? implSkipReason('ts');
const FLOOD_MS = Number(process.env['WG_TS_FLOOD_MS'] ?? 9000);
const KEPT_UP_RATE = Number(process.env['WG_TS_FLOOD_SOURCES_RATE'] ?? 5000);
const SPOOF4 = '10.128.0.0/9';
const SPOOF6 = '2001:db8:1000::/36';

describe(
  'hardening: handshake floods from more than 65,536 sources',
  { skip: skip ?? false },
  () => {
    const lab = new Lab('wgfs');
    let p: Pair;
    let tun: string;
    before(async () => {
      p = await makePair(lab, 'ts', 'ts');
      // The sender's TUN device: what is written into it arrives as if from these sources, and
      // A forwards it to B. B sends its replies to those sources back through A into the device.
      tun = lab.next('fs');
      const a = p.a.ns;
      await lab.exec(a, 'ip', ['tuntap', 'add', 'dev', tun, 'mode', 'tun']);
      await lab.exec(a, 'ip', ['link', 'set', tun, 'up']);
      for (const [k, v] of [
        ['net.ipv4.ip_forward', '1'],
        ['net.ipv6.conf.all.forwarding', '1'],
        ['net.ipv4.conf.all.rp_filter', '0'],
        ['net.ipv4.conf.default.rp_filter', '0'],
        [`net.ipv4.conf.${tun}.rp_filter`, '0'],
      ]) {
        await lab.exec(a, 'sysctl', ['-qw', `${k}=${v}`]);
      }
      await lab.exec(a, 'ip', ['route', 'add', SPOOF4, 'dev', tun]);
      await lab.exec(a, 'ip', ['-6', 'route', 'add', SPOOF6, 'dev', tun]);
      await lab.exec(p.b.ns, 'ip', ['route', 'add', SPOOF4, 'via', p.a.under4]);
      await lab.exec(p.b.ns, 'ip', ['-6', 'route', 'add', SPOOF6, 'via', 'fd00:241::1']);
    });
    after(() => lab.dispose());

    const cases = [
      { mac2: 'random', rate: 0 },
      { mac2: 'zero', rate: 0 },
      { mac2: 'random', rate: KEPT_UP_RATE },
    ] as const;
    for (const { mac2, rate } of cases) {
      const title = rate
        ? `mac2 ${mac2} at ${rate}/s: a legitimate peer completes within 5 s, memory bounded`
        : `mac2 ${mac2} at full rate: a legitimate peer completes within 5 s, memory bounded`;
      it(title, async (t) => {
        const pid = p.b.daemon.pid;
        // A fresh session each time: the handshake below is the one under test.
        await forgetSession(lab, p);
        // At a set rate, the peer handshakes once more than 65,536 sources of each family have
        // sent (the tables are full); at full rate 2 s in.
        const pingAfterMs = rate ? ((2 * 65_536) / rate) * 1000 + 1000 : 2000;
        const before = await uapiStats(p.b.ifname);
        const rss0 = rssKiB(pid);
        let rssMax = rss0;
        const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssKiB(pid))), 200);
        const cpu0 = cpuSecondsOf(pid);
        const t0 = Date.now();
        const flood = runBlaster(lab, p.a.ns, {
          mode: 'spoof',
          tun,
          target4: `${p.b.under4}:${p.b.port}`,
          target6: `[fd00:241::2]:${p.b.port}`,
          responderPublicKey: p.b.publicKey,
          durationMs: rate ? pingAfterMs + 7000 : FLOOD_MS,
          mac2,
          rate,
        });
        await new Promise((res) => setTimeout(res, pingAfterMs));
        const { done, seconds: handshakeS } = await handshakeOnPing(lab, p);
        const r = await flood;
        clearInterval(sampler);
        const wall = (Date.now() - t0) / 1000;
        const cpu = cpuSecondsOf(pid) - cpu0;
        const d = statsDelta(before, await uapiStats(p.b.ifname));
        t.diagnostic(
          `sent ${r.sent} (${r.kinds['v4']} IPv4 from as many addresses, ${r.kinds['v6']} IPv6 from as many /64s) in ${r.seconds.toFixed(1)} s = ${Math.round(r.sent / r.seconds)}/s; cookie replies back ${r.cookies}`,
        );
        t.diagnostic(
          `legitimate handshake ${done ? `after ${handshakeS.toFixed(2)} s` : 'NOT completed'}; daemon RSS ${Math.round(rss0 / 1024)} -> max ${Math.round(rssMax / 1024)} MiB; CPU ${((cpu / wall) * 100).toFixed(0)}%; ${JSON.stringify(d)}`,
        );
        assert.ok(pidAlive(pid), 'the daemon survived');
        assert.ok((r.kinds['v4'] ?? 0) > 65_536, 'more than 65,536 IPv4 sources');
        assert.ok((r.kinds['v6'] ?? 0) > 65_536, 'more than 65,536 IPv6 /64s');
        assert.ok(done, 'legitimate handshake completed within 5 s');
        // 4,096 a second to strangers, a burst of as many saved up, and the peer's own.
        const budget = 4096 * (r.seconds + 1) + 10;
        assert.ok(r.cookies <= budget, `${r.cookies} cookie replies in ${r.seconds.toFixed(1)} s`);
        // Two rate-limiter tables of 65,536 sources, the cookie state and the socket buffers: well
        // under 128 MiB above the idle daemon.
        assert.ok(rssMax - rss0 < 128 * 1024, `RSS grew ${Math.round((rssMax - rss0) / 1024)} MiB`);
        // After a full-rate flood the peer may be waiting for its retransmit (REKEY_TIMEOUT).
        await waitPing(lab, p.a.ns, p.b.inner4, 15_000);
      });
    }
  },
);
