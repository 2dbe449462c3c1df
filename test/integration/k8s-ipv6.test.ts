// An IPv6 underlay with dual-stack pods: two nodes (one wireguard-ts daemon, one wireguard-go)
// whose InternalIPs are IPv6 reach each other on IPv6 endpoints; IPv4 and IPv6 pod traffic both
// cross the tunnel; the IPv6 table and rule exist; the auto MTU is uplink − 80.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, waitFor } from '../../src/lab/wait.js';
import { SimCluster, simSkipReason } from './k8s/sim-cluster.js';

const skip = simSkipReason();
const sim = new SimCluster({ underlay: 6, dualStackPods: true });

before(async () => {
  if (skip) return;
  await sim.setup();
  for (const i of [1, 2]) await sim.addNode(i, { register: true });
});

after(async () => {
  if (!skip) await sim.dispose();
});

test('IPv6 underlay, dual-stack pods: both families cross the tunnel only', { skip }, async () => {
  const [n1, n2] = [sim.node(1), sim.node(2)];
  for (const n of [n1, n2]) sim.startAgent(n);
  try {
    await waitFor(() => sim.meshFormed([n1, n2]), 20_000, 'two-node mesh', 200);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${sim.agentLog()}`);
  }
  const endpoints = (await sim.lab.exec(n1.ns, 'wg', ['show', n1.ifname, 'endpoints'])).stdout;
  assert.ok(endpoints.includes(`[${n2.ip}]:51820`), endpoints);

  // Everything but API traffic, multicast and neighbour discovery (ICMPv6 133-137); plaintext
  // pod pings (ICMPv6 echo, ICMP) would show.
  const nd = 'icmp6 and ip6[40] >= 133 and ip6[40] <= 137';
  const cap = sim.capture(
    `not tcp port ${new URL(sim.api.url).port} and not ip6 multicast and not (${nd})`,
  );
  try {
    await sleep(300);
    await waitFor(() => sim.ping(n1, n2), 10_000, 'IPv4 pod 1 -> pod 2');
    await waitFor(() => sim.ping(n2, n1, { v6: true }), 10_000, 'IPv6 pod 2 -> pod 1');
    await sleep(200);
  } finally {
    await cap.stop();
  }
  const lines = cap.lines();
  const wg = lines.filter((l) => /\.51820[: ]/.test(l) && / UDP/.test(l));
  assert.ok(wg.length > 0, lines.join('\n'));
  assert.deepEqual(
    lines.filter((l) => !wg.includes(l)),
    [],
    'only WireGuard UDP on the underlay',
  );

  assert.match(await sim.table(n1, '51820', 6), /fd10:244:2::\/64 dev /);
  assert.match(await sim.table(n1, '51820', 4), /10\.244\.2\.0\/24 dev /);
  const rules6 = (await sim.lab.exec(n1.ns, 'ip', ['-6', 'rule', 'show'])).stdout;
  assert.match(rules6, /not from all fwmark 0x80000\/0x80000 lookup 51820/);
  const link = (await sim.lab.exec(n1.ns, 'ip', ['-j', 'link', 'show', n1.ifname])).stdout;
  assert.equal((JSON.parse(link) as Array<{ mtu: number }>)[0]!.mtu, 1420, '1500 - 80 (IPv6)');
});
