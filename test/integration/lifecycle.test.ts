/**
 * Daemon lifecycle, for each selected implementation (WG_TS_IMPLS), following wireguard-go's
 * conventions: exit on link deletion, on removal of the UAPI socket file and on SIGTERM/SIGINT
 * (cleaning up socket and link); a second daemon for a live name exits 1; a stale socket file is
 * replaced; the link moved to another namespace keeps working; link down/up and MTU changes are
 * followed.
 * After each test nothing of the daemon is left (process, socket file, link).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DAEMON_HEAP_FLAGS } from '../../src/daemon.js';
import {
  Lab,
  implCommand,
  implSkipReason,
  labSkipReason,
  makePair,
  ping,
  selectedImpls,
  socketLive,
  sleep,
  socketPath,
  startCapture,
  startDaemon,
  waitFor,
  waitPing,
  wg,
  type Daemon,
  type Netns,
} from '../../src/lab/index.js';

for (const impl of selectedImpls()) {
  const skip =
    labSkipReason(['ip', 'wg', 'ping', 'ncat', 'tcpdump']) ??
    implSkipReason(impl) ??
    implSkipReason('go');

  describe(`lifecycle of ${impl}`, { skip: skip ?? false }, () => {
    const lab = new Lab('wgti');
    let ns: Netns;
    before(async () => {
      ns = await lab.netns(lab.next('c'));
    });
    after(() => lab.dispose());

    const linkExists = async (n: Netns, ifname: string) =>
      (await lab.tryExec(n, 'ip', ['link', 'show', 'dev', ifname])).code === 0;

    /** Waits for the daemon to exit and checks nothing of it is left. */
    const assertGone = async (d: Daemon) => {
      await d.waitExit(5000);
      await waitFor(async () => !(await linkExists(ns, d.ifname)), 2000, `link ${d.ifname} gone`);
      assert.equal(existsSync(d.socketPath), false, 'socket file removed');
    };

    const start = () => startDaemon(lab, ns, impl, lab.name(lab.next('c')));

    if (impl === 'ts') {
      it('the daemonized child runs with the heap sizing (young generation capped)', async () => {
        const d = await start();
        const argv = readFileSync(`/proc/${d.pid}/cmdline`, 'utf8').split('\0');
        for (const f of DAEMON_HEAP_FLAGS) assert.ok(argv.includes(f), argv.join(' '));
        await d.stop();
      });
    }

    it('exits when its link is deleted', async () => {
      const d = await start();
      await lab.exec(ns, 'ip', ['link', 'del', d.ifname]);
      await assertGone(d);
    });

    it('exits when its socket file is removed', async () => {
      const d = await start();
      await lab.exec(null, 'rm', [d.socketPath]);
      await assertGone(d);
    });

    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      it(`${signal} ends it cleanly`, async () => {
        const d = await start();
        // wireguard-go installs its signal handlers just after the socket answers; a signal in
        // that window kills it without cleanup. Give it a moment, as any real user would.
        await wg(lab, ns, ['show', d.ifname]);
        await sleep(200);
        process.kill(d.pid, signal);
        await assertGone(d);
      });
    }

    it('a second daemon for a live name exits 1 and leaves the first alone', async () => {
      const d = await start();
      const second = lab.spawn(ns, implCommand(impl), [d.ifname], {
        env: { ...process.env, LOG_LEVEL: 'error' },
      });
      const st = await Promise.race([
        second.exited,
        new Promise<null>((r) => setTimeout(() => r(null), 10_000)),
      ]);
      assert.ok(st, 'second daemon did not exit within 10 s');
      assert.equal(st.code, 1, `second daemon exit: ${JSON.stringify(st)} ${second.output()}`);
      assert.ok(d.alive(), 'first daemon still running');
      assert.ok(await socketLive(d.ifname), 'first daemon still serves its socket');
      assert.match(await wg(lab, ns, ['show', d.ifname]), new RegExp(`interface: ${d.ifname}`));
      await d.stop();
      await assertGone(d);
    });

    it('replaces a stale socket file nobody listens on', async () => {
      const ifname = lab.name(lab.next('c'));
      const path = socketPath(ifname);
      const holder = lab.spawn(null, 'ncat', ['-lU', path]);
      await waitFor(() => existsSync(path), 3000, 'stale socket file');
      holder.kill('SIGKILL');
      await holder.exited;
      assert.ok(statSync(path).isSocket(), 'leftover socket file in place');
      assert.equal(await socketLive(ifname), false, 'nobody listens on it');
      const d = await startDaemon(lab, ns, impl, ifname);
      assert.ok(await socketLive(ifname));
      await wg(lab, ns, ['set', ifname, 'listen-port', '51999']);
      assert.equal((await wg(lab, ns, ['show', ifname, 'listen-port'])).trim(), '51999');
      await d.stop();
      await assertGone(d);
    });

    it('keeps working when its link is moved to another namespace', async () => {
      const p = await makePair(lab, impl, 'go');
      await waitPing(lab, p.a.ns, p.b.inner4, 8000);
      const elsewhere = await lab.netns(lab.next('m'));
      await lab.exec(p.a.ns, 'ip', ['link', 'set', p.a.ifname, 'netns', elsewhere.name]);
      await lab.addr(elsewhere, p.a.ifname, `${p.a.inner4}/24`);
      await lab.exec(elsewhere, 'ip', ['link', 'set', p.a.ifname, 'up']);
      await waitPing(lab, elsewhere, p.b.inner4, 5000);
      assert.ok(await ping(lab, p.b.ns, p.a.inner4), 'B reaches the moved link');
      assert.ok(p.a.daemon.alive(), 'daemon stays');
      assert.ok(await socketLive(p.a.ifname), 'UAPI still served');
      await p.a.daemon.stop();
      await p.a.daemon.waitExit(5000);
      assert.equal(existsSync(p.a.daemon.socketPath), false, 'socket file removed');
      await waitFor(
        async () => !(await linkExists(elsewhere, p.a.ifname)),
        2000,
        'moved link gone with its daemon',
      );
    });

    it('keeps the tunnel through link down/up on either end', async () => {
      const p = await makePair(lab, impl, 'go');
      await waitPing(lab, p.a.ns, p.b.inner4, 8000);
      for (const end of [p.a, p.b]) {
        await lab.exec(end.ns, 'ip', ['link', 'set', end.ifname, 'down']);
        assert.equal(await ping(lab, p.a.ns, p.b.inner4), false, 'no traffic while down');
        await lab.exec(end.ns, 'ip', ['link', 'set', end.ifname, 'up']);
        // IPv4 addresses and their routes survive down/up: the daemon only has to keep serving
        // the same TUN device.
        await waitPing(lab, p.a.ns, p.b.inner4, 5000);
      }
      assert.ok(p.a.daemon.alive() && p.b.daemon.alive(), 'daemons stay');
    });

    it('follows link MTU changes (padding capped at the new MTU)', async () => {
      const p = await makePair(lab, impl, 'go');
      await waitPing(lab, p.a.ns, p.b.inner4, 8000);
      // A 1297-byte inner packet pads to 1312 under MTU 1420, but only to 1300 under MTU 1300:
      // the data message (16 header + padded + 16 tag) is 1344 or 1332 bytes on the wire.
      const sizes = async (): Promise<number[]> => {
        const cap = await startCapture(lab, p.b.ns, p.b.veth, ['udp', 'and', 'src', p.a.under4]);
        await ping(lab, p.a.ns, p.b.inner4, { size: 1269 });
        const r = await cap.stop();
        return r.packets
          .filter((x) => x.kind === 'wg-data' && x.payloadLength > 1000)
          .map((x) => x.payloadLength);
      };
      assert.deepEqual(await sizes(), [1344], 'MTU 1420: padded to 1312');
      await lab.exec(p.a.ns, 'ip', ['link', 'set', p.a.ifname, 'mtu', '1300']);
      let last: number[] = [];
      await waitFor(
        async () => {
          last = await sizes();
          return last.length === 1 && last[0] === 1332;
        },
        5000,
        'padding capped at MTU 1300',
        0,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; last sizes ${JSON.stringify(last)}`);
      });
    });
  });
}
