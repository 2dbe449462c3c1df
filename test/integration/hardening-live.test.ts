/**
 * Live hardening of a running wireguard-ts daemon (issue 6 §2, §4): real traffic between a
 * wireguard-ts pair is recorded by a relay; then a sender in the other namespace replays the
 * recorded datagrams (never delivered again: replay window and TAI64N check) and blasts the
 * daemon's port with random bytes and mutated copies of real messages of all four types. The
 * daemon stays up, its RSS stays bounded, the tunnel keeps passing traffic throughout, and its
 * `stats=1` drop counters (plus the kernel's receive-buffer drops) account for every datagram.
 *
 * WG_TS_LIVE_FUZZ_DATAGRAMS (default 20000) and WG_TS_LIVE_FUZZ_RATE (default 20000/s) scale
 * it: the long mode is e.g. 1000000 at rate 0 (as fast as the sender goes).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  Lab,
  dropTotal,
  labSkipReason,
  linkStats,
  makePair,
  ping,
  pidAlive,
  rssKiB,
  runBlaster,
  startRelay,
  statsDelta,
  udpRcvbufErrors,
  waitPing,
  wg,
  implSkipReason,
  type Pair,
  type RelayHandle,
} from '../../src/lab/index.js';
import { uapiStats } from '../../src/control/uapi-client.js';

const TOOLS = ['ip', 'wg', 'ping'];
const skip = labSkipReason(TOOLS) ?? implSkipReason('ts');
const COUNT = Number(process.env['WG_TS_LIVE_FUZZ_DATAGRAMS'] ?? 20_000);
const RATE = Number(process.env['WG_TS_LIVE_FUZZ_RATE'] ?? 20_000);

describe(
  'hardening: live fuzzing and replays against a wireguard-ts daemon',
  { skip: skip ?? false },
  () => {
    const lab = new Lab('wgth');
    let p: Pair;
    let relay: RelayHandle;
    let record: string;
    before(async () => {
      p = await makePair(lab, 'ts', 'ts', { endpoints: 'a' });
      record = join(lab.tmpdir(), 'record.txt');
      relay = await startRelay(lab, p.a.ns, {
        listen: '127.0.0.1:40000',
        target: `${p.b.under4}:${p.b.port}`,
        record,
      });
      await wg(lab, p.a.ns, ['set', p.a.ifname, 'peer', p.b.publicKey, 'endpoint', relay.listen]);
      await waitPing(lab, p.a.ns, p.b.inner4, 10_000);
      assert.ok(await ping(lab, p.a.ns, p.b.inner4, { count: 10, intervalS: 0.02 }));
      assert.ok(await ping(lab, p.b.ns, p.a.inner4, { count: 5, intervalS: 0.02 }));
    });
    after(() => lab.dispose());

    it('recorded transport and handshake messages replayed later are never delivered', async (t) => {
      const before = await uapiStats(p.b.ifname);
      const rx0 = (await linkStats(lab, p.b.ns, p.b.ifname)).rxPackets;
      const r = await runBlaster(lab, p.a.ns, {
        mode: 'fuzz',
        target: `${p.b.under4}:${p.b.port}`,
        count: 200,
        rate: 2000,
        corpus: record,
        replayOnly: true,
      });
      const after = await uapiStats(p.b.ifname);
      const d = statsDelta(before, after);
      t.diagnostic(`replayed ${r.sent}: ${JSON.stringify(d)}`);
      assert.equal(
        (await linkStats(lab, p.b.ns, p.b.ifname)).rxPackets,
        rx0,
        'nothing reached the TUN',
      );
      assert.ok((d['drop_replayed_counter'] ?? 0) > 0, 'transport replays hit the replay window');
      assert.ok(
        (d['drop_replayed_timestamp'] ?? 0) > 0,
        'the initiation replay is refused (TAI64N)',
      );
      assert.equal(dropTotal(after) - dropTotal(before), r.sent, 'every replay counted as a drop');
      assert.ok(
        await ping(lab, p.a.ns, p.b.inner4, { count: 2 }),
        'the real sender is not locked out',
      );
    });

    it(`${COUNT} hostile datagrams: daemon up, RSS bounded, tunnel alive, drops accounted`, async (t) => {
      const pid = p.b.daemon.pid;
      const rss0 = rssKiB(pid);
      const before = await uapiStats(p.b.ifname);
      const kernel0 = await udpRcvbufErrors(lab, p.b.ns);
      // Legitimate traffic through the tunnel during the whole blast.
      const pings = lab.spawn(p.a.ns, 'ping', ['-n', '-q', '-i', '0.05', '-W', '1', p.b.inner4]);
      const r = await runBlaster(lab, p.a.ns, {
        mode: 'fuzz',
        target: `${p.b.under4}:${p.b.port}`,
        count: COUNT,
        rate: RATE,
        corpus: record,
        seed: Date.now() % 100_000,
      });
      await new Promise((res) => setTimeout(res, 500)); // replies in flight
      pings.kill('SIGINT'); // ping prints its summary
      await pings.exited;
      const pr = { stdout: pings.output() };
      const after = await uapiStats(p.b.ifname);
      const kernel = (await udpRcvbufErrors(lab, p.b.ns)) - kernel0;
      const drops = dropTotal(after) - dropTotal(before);
      const rss = rssKiB(pid);
      const m = /(\d+) packets transmitted, (\d+) received/.exec(pr.stdout);
      t.diagnostic(
        `sent ${r.sent} in ${r.seconds}s (${Math.round(r.sent / r.seconds)}/s) ${JSON.stringify(r.kinds)}`,
      );
      t.diagnostic(
        `drops ${drops} + kernel rcvbuf ${kernel}; ${JSON.stringify(statsDelta(before, after))}`,
      );
      t.diagnostic(
        `RSS ${rss0} -> ${rss} KiB; pings ${m?.[2]}/${m?.[1]}; replies to blaster ${r.received}`,
      );
      assert.ok(pidAlive(pid), 'daemon still running');
      assert.ok(rss < rss0 + 64 * 1024, `RSS grew from ${rss0} to ${rss} KiB`);
      assert.ok(m && Number(m[2]) >= Number(m[1]) * 0.9, `pings during the blast: ${pr.stdout}`);
      // Every hostile datagram is a counted drop unless the kernel dropped it first; the only
      // extra drops allowed are a handful from the legitimate traffic (e.g. a cookie round).
      assert.ok(
        drops + kernel >= r.sent,
        `uncounted: sent ${r.sent}, drops ${drops}, kernel ${kernel}`,
      );
      assert.ok(drops <= r.sent + 20, `more drops (${drops}) than hostile datagrams (${r.sent})`);
      assert.equal(after.get('peers'), 1);
      assert.ok((after.get('indices') ?? 0) <= 4, `indices ${after.get('indices')}`);
      assert.ok(
        await ping(lab, p.a.ns, p.b.inner4, { count: 3, intervalS: 0.1 }),
        'tunnel alive after',
      );
    });
  },
);
