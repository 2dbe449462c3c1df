#!/usr/bin/env node
// `npm run demo` (as root): the "see it work" tour for a newcomer. Builds two network namespaces
// joined by a veth, runs a wireguard-ts daemon in each (wireguard-go, with a warning, if
// wireguard-ts is not built), does the handshake, pings, times a transfer, prints both ends'
// status, and captures the underlay while a marker string crosses the tunnel to show that only
// WireGuard UDP is on the wire and the marker never is. Everything it creates is removed at the
// end, also on failure or Ctrl-C. Exit 0 on success, 1 on failure.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const labPath = new URL('../dist/src/lab/index.js', import.meta.url);
const tty = process.stdout.isTTY;
const paint = (code) => (s) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = paint('1');
const green = paint('32');
const yellow = paint('33');
const red = paint('31');
const dim = paint('2');

function step(n, text) {
  console.log(`\n${bold(`${n}.`)} ${bold(text)}`);
}
function info(text) {
  console.log(`   ${text}`);
}
function indent(text) {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `     ${l}`)
    .join('\n');
}

async function main() {
  if (process.getuid?.() !== 0) {
    console.error(
      red('The demo needs root (it creates network namespaces): run `sudo npm run demo`.'),
    );
    return 1;
  }
  if (!existsSync(fileURLToPath(labPath))) {
    console.error(
      red(`Not built yet: run \`npm ci\` (or \`npx tsc -p tsconfig.json\`) in ${root}.`),
    );
    return 1;
  }
  const L = await import(labPath.href);
  const missing = ['ip', 'wg', 'ping', 'ncat', 'tcpdump'].filter(
    (t) => L.labSkipReason([t]) !== undefined,
  );
  if (missing.length > 0) {
    console.error(red(`Missing tools: ${missing.join(' ')} (see scripts/setup.sh).`));
    return 1;
  }
  let impl = 'ts';
  if (L.implSkipReason('ts')) {
    if (L.implSkipReason('go')) {
      console.error(red(`${L.implSkipReason('ts')}, and wireguard-go is not installed either.`));
      return 1;
    }
    impl = 'go';
    console.log(
      yellow(
        `⚠ ${L.implSkipReason('ts')}: this demo runs with wireguard-go instead of wireguard-ts.`,
      ),
    );
  }
  const implName = impl === 'ts' ? 'wireguard-ts' : 'wireguard-go';

  console.log(bold(`wireguard-ts demo: two hosts, one ${implName} tunnel`));
  const lab = new L.Lab('wgtdemo');
  try {
    step(1, 'Two "hosts" (network namespaces) joined by a virtual cable (veth)');
    const p = await L.makePair(lab, impl, impl, { stem: 'p' });
    info(`host A: namespace ${p.a.ns.name}, underlay ${p.a.under4} on ${p.a.veth}`);
    info(`host B: namespace ${p.b.ns.name}, underlay ${p.b.under4} on ${p.b.veth}`);
    info(`${implName} runs in each, configured with \`wg set\`:`);
    info(`  A: ${p.a.ifname} = ${p.a.inner4} / ${p.a.inner6}, listening on UDP ${p.a.port}`);
    info(`  B: ${p.b.ifname} = ${p.b.inner4} / ${p.b.inner6}, listening on UDP ${p.b.port}`);

    step(2, 'Handshake: the first packet from A to B starts it');
    const t0 = Date.now();
    await L.waitPing(lab, p.a.ns, p.b.inner4, 10_000);
    info(green(`✔ handshake done and first ping answered in ${Date.now() - t0} ms`));

    step(3, 'Ping through the tunnel (IPv4 and IPv6 inside)');
    for (const addr of [p.b.inner4, p.b.inner6]) {
      const r = await lab.exec(p.a.ns, 'ping', ['-n', '-q', '-c', '5', '-i', '0.2', addr]);
      const rtt = /= [\d.]+\/([\d.]+)\/[\d.]+/.exec(r.stdout)?.[1];
      const loss = /(\d+)% packet loss/.exec(r.stdout)?.[1];
      info(`${green('✔')} A → ${addr}: 5 pings, ${loss ?? '?'}% loss, average ${rtt ?? '?'} ms`);
    }

    step(4, 'A 20 MB TCP transfer from A to B (ncat), checked by sha256 at B');
    const t = await L.tcpTransfer(lab, p.a.ns, p.b.ns, p.b.inner4, { bytes: 20 << 20 });
    if (t.receivedSha256 !== t.sentSha256) throw new Error('transfer corrupted: sha256 differs');
    info(
      `${green('✔')} ${(t.receivedBytes / 1e6).toFixed(1)} MB in ${t.seconds.toFixed(2)} s = ` +
        `${bold(`${t.mbitPerSec.toFixed(0)} Mbit/s`)}, sha256 ${t.receivedSha256.slice(0, 16)}… matches`,
    );
    info(
      dim(
        '(one TCP stream through two daemons sharing this machine; `npm run bench` measures properly)',
      ),
    );

    step(5, 'Status of both ends (`wg show`)');
    for (const e of [p.a, p.b]) {
      const out = await L.wg(lab, e.ns, ['show', e.ifname]);
      console.log(indent(out));
      console.log();
    }

    step(6, 'What is on the wire? tcpdump on the underlay while a marker crosses the tunnel');
    const marker = `HELLO-WIREGUARD-TS-${process.pid}-${Date.now()}`;
    const cap = await L.startCapture(lab, p.a.ns, p.a.veth);
    const port = 7777;
    const rx = lab.spawn(p.b.ns, 'ncat', ['-l', '--recv-only', '-p', `${port}`]);
    await L.waitFor(
      async () =>
        (await lab.tryExec(p.b.ns, 'ss', ['-Hltn', `sport = :${port}`])).stdout.trim() !== '',
      5000,
      'ncat listening',
    );
    await lab.exec(p.a.ns, 'ncat', ['--send-only', p.b.inner4, `${port}`], {
      input: `${marker}\n`,
    });
    await L.waitFor(() => rx.output().includes(marker), 5000, 'the marker at B');
    const res = await cap.stop();
    info(`B received the marker in clear text: ${bold(marker)}`);
    const wgCount = res.wireguard;
    const housekeeping = (res.counts.arp ?? 0) + (res.counts.icmp6 ?? 0);
    const other = res.packets.length - wgCount - housekeeping;
    info(`captured ${res.packets.length} packets on ${p.a.veth}:`);
    for (const [kind, n] of Object.entries(res.counts)) info(`  ${String(n).padStart(4)}  ${kind}`);
    for (const pkt of res.packets.filter((x) => x.kind.startsWith('wg-')).slice(0, 6)) {
      info(
        dim(
          `  ${pkt.src}:${pkt.sport} → ${pkt.dst}:${pkt.dport}  ${pkt.kind}, ${pkt.payloadLength} bytes`,
        ),
      );
    }
    const found = res.contains(marker);
    if (found || other > 0 || wgCount === 0) {
      throw new Error(
        `underlay check failed: marker on the wire: ${found}, non-WireGuard IP packets: ${other}`,
      );
    }
    info(
      green(
        `✔ ${wgCount} WireGuard UDP packets, no other IP traffic, and the marker appears in none of them`,
      ),
    );
    if (housekeeping > 0)
      info(dim(`  (${housekeeping} ARP/ICMPv6 packets are the veth's own neighbour discovery)`));

    console.log(
      `\n${green(bold('Demo finished: the tunnel works and its traffic is encrypted.'))}`,
    );
    return 0;
  } finally {
    process.stdout.write(dim('\nCleaning up namespaces, links and daemons… '));
    await lab.dispose();
    console.log(dim('done.'));
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(red(`\n✘ demo failed: ${err instanceof Error ? err.message : String(err)}`));
    process.exit(1);
  },
);
