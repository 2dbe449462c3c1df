/**
 * Handshake flood (issue 6 §3): initiations with a valid mac1 (keyed with the responder's public
 * key, so they pass the cheap check and would cost a DH each) from 32 source addresses at a
 * wireguard-ts daemon.
 *
 * 1. As fast as the sender goes: under-load mode engages, cookie replies go out instead of DH
 *    work (DH attempts stay near the per-second threshold), the daemon's CPU stays bounded and
 *    it survives. What the kernel drops at the daemon's socket before it reads (counted as
 *    drop_udp_receive_queue) is printed: near zero since sources past their cookie budget are
 *    dropped before any hashing.
 * 2. At full rate again, while a legitimate wireguard-ts peer handshakes: it completes within
 *    5 s (in practice ~0.1 s). Its first initiation is answered with a cookie reply, and it
 *    resends at once with mac2 (wireguard-go and the kernel wait for their retransmit,
 *    REKEY_TIMEOUT + jitter, 5.0–5.4 s). It gets through because the daemon reads as fast as
 *    the flood comes: each source gets at most 20 cookie replies/s, and a message from a source
 *    past its budget is dropped before any hashing.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Lab,
  cpuSecondsOf,
  forgetSession,
  handshakeOnPing,
  dropTotal,
  implSkipReason,
  labSkipReason,
  makePair,
  pidAlive,
  ping,
  runBlaster,
  statsDelta,
  udpRcvbufErrors,
  type BlasterResult,
  type Pair,
} from '../../src/lab/index.js';
import { uapiStats } from '../../src/control/uapi-client.js';

const skip = labSkipReason(['ip', 'wg', 'ping']) ?? implSkipReason('ts');
const MAX_MS = Number(process.env['WG_TS_FLOOD_MS'] ?? 3000);
// 0: as fast as the sender goes. Set a rate to study a slower flood.
const RATE = Number(process.env['WG_TS_FLOOD_RATE'] ?? 0);
const SOURCES = 32;

/**
 * Floods B from A's extra source addresses for `durationMs` (rate 0: as fast as the sender
 * goes); 1.5 s in, when the responder is under load, A pings B so that it initiates, and the
 * handshake is awaited for 5 s. Returns whether it completed, after how long, and the flood.
 */
async function handshakeDuringFlood(
  lab: Lab,
  p: Pair,
  sources: readonly string[],
  rate: number,
  durationMs: number,
  mac2: 'zero' | 'random' = 'zero',
): Promise<{ done: boolean; handshakeS: number; r: BlasterResult }> {
  const flood = runBlaster(lab, p.a.ns, {
    mode: 'flood',
    target: `${p.b.under4}:${p.b.port}`,
    responderPublicKey: p.b.publicKey,
    sources,
    durationMs,
    rate,
    mac2,
  });
  await new Promise((res) => setTimeout(res, 1500)); // under-load mode engages
  const { done, seconds } = await handshakeOnPing(lab, p);
  return { done, handshakeS: seconds, r: await flood };
}

/** SOURCES extra addresses on a's veth for the blaster to send from; returns them. */
async function addFloodSources(lab: Lab, p: Pair): Promise<string[]> {
  const sources: string[] = [];
  for (let i = 0; i < SOURCES; i++) {
    sources.push(`192.168.241.${100 + i}`);
    await lab.addr(p.a.ns, p.a.veth, `192.168.241.${100 + i}/32`);
  }
  return sources;
}

describe('hardening: handshake flood', { skip: skip ?? false }, () => {
  const lab = new Lab('wgth');
  let p: Pair;
  let sources: string[];
  before(async () => {
    p = await makePair(lab, 'ts', 'ts');
    sources = await addFloodSources(lab, p);
  });
  after(() => lab.dispose());

  it('at full rate: cookies instead of DH, bounded CPU, daemon survives', async (t) => {
    const pid = p.b.daemon.pid;
    const before = await uapiStats(p.b.ifname);
    const k0 = await udpRcvbufErrors(lab, p.b.ns);
    const cpu0 = cpuSecondsOf(pid);
    const t0 = Date.now();
    const r = await runBlaster(lab, p.a.ns, {
      mode: 'flood',
      target: `${p.b.under4}:${p.b.port}`,
      responderPublicKey: p.b.publicKey,
      sources,
      durationMs: MAX_MS,
    });
    const wall = (Date.now() - t0) / 1000;
    const cpu = cpuSecondsOf(pid) - cpu0;
    const kernel = (await udpRcvbufErrors(lab, p.b.ns)) - k0;
    const d = statsDelta(before, await uapiStats(p.b.ifname));
    // What the daemon read and dropped; the kernel's socket-queue drops are counted apart.
    const seen = dropTotal(new Map(Object.entries(d)));
    const dh = (d['drop_handshake_failed'] ?? 0) + (d['drop_unknown_peer'] ?? 0);
    t.diagnostic(
      `sent ${r.sent} in ${r.seconds.toFixed(1)} s = ${Math.round(r.sent / r.seconds)}/s; daemon handled ${Math.round(seen / wall)}/s, kernel dropped ${kernel}; cookies received ${r.cookies}`,
    );
    t.diagnostic(
      `daemon CPU ${((cpu / wall) * 100).toFixed(0)}% of one core; DH attempts ${dh}; ${JSON.stringify(d)}`,
    );
    assert.ok(pidAlive(pid));
    assert.ok(r.sent / r.seconds > 1000, 'the flood reached a meaningful rate');
    // Each source gets its burst of cookie replies, then drops without one (20/s per source).
    const cookieDrops = (d['drop_cookie_required'] ?? 0) + (d['drop_cookie_rate_limited'] ?? 0);
    assert.ok(cookieDrops > seen * 0.9, 'cookies or their per-source limit instead of DH work');
    assert.ok(r.cookies > 0, 'cookie replies reached the flooder');
    // Only about the first second's threshold (UNDER_LOAD_HANDSHAKES_PER_SECOND = 128) does DH.
    assert.ok(dh <= 400, `DH attempts ${dh}`);
    assert.ok(cpu / wall < 1.5, `daemon CPU ${cpu}s over ${wall}s`);
  });

  it(`at ${RATE ? `${RATE}/s` : 'full rate'}: a legitimate peer completes its handshake within 5 s`, async (t) => {
    const pid = p.b.daemon.pid;
    const before = await uapiStats(p.b.ifname);
    const cpu0 = cpuSecondsOf(pid);
    const t0 = Date.now();
    const { done, handshakeS, r } = await handshakeDuringFlood(lab, p, sources, RATE, 9000);
    const wall = (Date.now() - t0) / 1000;
    const cpu = cpuSecondsOf(pid) - cpu0;
    const d = statsDelta(before, await uapiStats(p.b.ifname));
    t.diagnostic(
      `sent ${Math.round(r.sent / r.seconds)}/s, cookies received ${r.cookies}, CPU ${((cpu / wall) * 100).toFixed(0)}%`,
    );
    t.diagnostic(
      `legitimate handshake ${done ? `completed after ${handshakeS.toFixed(1)} s` : 'did not complete'}; ${JSON.stringify(d)}`,
    );
    assert.ok(done, 'legitimate handshake completed within 5 s');
    const cookieDrops = (d['drop_cookie_required'] ?? 0) + (d['drop_cookie_rate_limited'] ?? 0);
    const kernel = d['drop_udp_receive_queue'] ?? 0;
    assert.ok(cookieDrops + kernel > r.sent * 0.8, 'under load all the time');
    assert.ok(await ping(lab, p.a.ns, p.b.inner4, { count: 2 }), 'tunnel works after the flood');
  });

  it('random mac2 values at full rate: a legitimate peer completes within 5 s', async (t) => {
    // Each message with a mac2 costs mac1, the cookie and the mac2 check before its source's
    // cookie budget is looked at: the most a flood from these 32 sources can make us hash.
    await forgetSession(lab, p);
    const pid = p.b.daemon.pid;
    const before = await uapiStats(p.b.ifname);
    const cpu0 = cpuSecondsOf(pid);
    const t0 = Date.now();
    const { done, handshakeS, r } = await handshakeDuringFlood(lab, p, sources, 0, 9000, 'random');
    const wall = (Date.now() - t0) / 1000;
    const cpu = cpuSecondsOf(pid) - cpu0;
    const d = statsDelta(before, await uapiStats(p.b.ifname));
    t.diagnostic(
      `sent ${Math.round(r.sent / r.seconds)}/s, cookies received ${r.cookies}, CPU ${((cpu / wall) * 100).toFixed(0)}%; legitimate handshake ${done ? `after ${handshakeS.toFixed(2)} s` : 'not completed'}; ${JSON.stringify(d)}`,
    );
    assert.ok(pidAlive(pid));
    assert.ok(done, 'legitimate handshake completed within 5 s');
    assert.ok(await ping(lab, p.a.ns, p.b.inner4, { count: 2 }), 'tunnel works after the flood');
  });
});

// Interop of the immediate resend: a wireguard-go responder under load answers our initiation
// with a cookie reply; the wireguard-ts initiator resends with mac2 at once instead of waiting
// REKEY_TIMEOUT, and wireguard-go accepts it.
const goSkip = skip ?? implSkipReason('go');
const GO_RATE = Number(process.env['WG_TS_FLOOD_GO_RATE'] ?? 20000);

describe('handshake flood against a wireguard-go responder', { skip: goSkip ?? false }, () => {
  const lab = new Lab('wgtg');
  let p: Pair;
  let sources: string[];
  before(async () => {
    p = await makePair(lab, 'ts', 'go');
    sources = await addFloodSources(lab, p);
  });
  after(() => lab.dispose());

  it(`at ${GO_RATE}/s: the wireguard-ts initiator completes within 5 s`, async (t) => {
    // Two tries at most, each with a fresh peer on our side: whether wireguard-go, flooded on a
    // shared machine, reads our resend before its queue drops it is not ours to decide (it
    // failed once in CI, 0 of 13 times here); a resend that does not work fails both.
    let done = false;
    let cookies = 0;
    for (let attempt = 1; attempt <= 2 && !done; attempt++) {
      await forgetSession(lab, p);
      const before = await uapiStats(p.a.ifname);
      const h = await handshakeDuringFlood(lab, p, sources, GO_RATE, 8000);
      // What our initiator saw (a cookie reply it could not use would show as bad_cookie).
      const ours = statsDelta(before, await uapiStats(p.a.ifname));
      t.diagnostic(
        `try ${attempt}: flood ${Math.round(h.r.sent / h.r.seconds)}/s, cookie replies from wireguard-go ${h.r.cookies}; handshake ${h.done ? `after ${h.handshakeS.toFixed(1)} s` : 'not completed'}; initiator ${JSON.stringify(ours)}`,
      );
      done = h.done;
      cookies = h.r.cookies;
    }
    assert.ok(cookies > 0, 'wireguard-go was under load (it sent cookie replies)');
    assert.ok(done, 'handshake completed within 5 s');
    assert.ok(await ping(lab, p.a.ns, p.b.inner4, { count: 2 }), 'tunnel works after the flood');
  });
});
