/**
 * The crypto pool under a full-rate blast in real daemons: a wireguard-ts pair with
 * WG_TS_WORKERS=1 and =3 takes an unlimited-rate UDP blast of full-size datagrams (iperf3 -u
 * -b 0, so the receiver's UDP reads hand over batches of thousands of datagrams) and then a
 * 30 MB TCP transfer. No packet may fail its tag at either end (a packet opened or sealed twice
 * would: 18,432 decrypt_failed drops in one such blast before the pool was fixed) and the TCP
 * bytes keep their sha256. Loss under the blast is allowed; corruption is not.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import {
  Lab,
  implSkipReason,
  labSkipReason,
  makePair,
  socketPath,
  tcpTransfer,
  waitFor,
  waitPing,
} from '../../src/lab/index.js';
import { uapiStats } from '../../src/control/uapi-client.js';

const skip = labSkipReason(['ip', 'wg', 'ping', 'iperf3']) ?? implSkipReason('ts');
/** The largest UDP payload in one 1420-byte tunnel packet (IPv4). */
const DATAGRAM = 1420 - 20 - 8;

async function drops(ifname: string): Promise<Map<string, number>> {
  const stats = await uapiStats(socketPath(ifname));
  return new Map([...stats].filter(([k]) => k.startsWith('drop_')));
}

function show(m: Map<string, number>): string {
  return (
    [...m]
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ') || 'none'
  );
}

for (const workers of ['1', '3']) {
  describe(`crypto pool under a blast, WG_TS_WORKERS=${workers}`, { skip: skip ?? false }, () => {
    const lab = new Lab('wgpb');
    after(() => lab.dispose());

    it('a full-rate UDP blast and 30 MB of TCP: no decrypt failure, sha256 kept', async () => {
      const p = await makePair(lab, 'ts', 'ts', { daemonEnv: { WG_TS_WORKERS: workers } });
      await waitPing(lab, p.a.ns, p.b.inner4, 8000);
      const server = lab.spawn(p.b.ns, 'iperf3', [
        '-s',
        '-1',
        '--forceflush',
        '-B',
        p.b.inner4,
        '-p',
        '5299',
      ]);
      await waitFor(
        () => Promise.resolve(server.output().includes('listening')),
        5000,
        'iperf3 server',
        20,
      );
      const blast = await lab.tryExec(
        p.a.ns,
        'iperf3',
        ['-c', p.b.inner4, '-p', '5299', '-u', '-b', '0', '-l', `${DATAGRAM}`, '-t', '3', '-J'],
        { timeoutMs: 20_000 },
      );
      assert.equal(blast.code, 0, blast.stderr);
      const report = JSON.parse(blast.stdout) as {
        end: { sum: { packets: number; lost_packets: number } };
      };
      const { packets, lost_packets: lost } = report.end.sum;
      assert.ok(packets > 0, 'the blast sent datagrams');
      assert.ok(lost < packets, `some datagrams arrived (lost ${lost} of ${packets})`);
      const t = await tcpTransfer(lab, p.a.ns, p.b.ns, p.b.inner4, { bytes: 30 * 1024 * 1024 });
      assert.equal(t.receivedBytes, t.bytes);
      assert.equal(t.receivedSha256, t.sentSha256);
      const [da, db] = [await drops(p.a.ifname), await drops(p.b.ifname)];
      const why = `sent ${packets}, lost ${lost}; drops at a: ${show(da)}; at b: ${show(db)}`;
      console.log(`# WG_TS_WORKERS=${workers}: ${why}`);
      assert.equal(db.get('drop_decrypt_failed'), 0, why);
      assert.equal(da.get('drop_decrypt_failed'), 0, why);
    });
  });
}
