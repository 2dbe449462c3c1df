/**
 * The `wireguard-ts k8s` command line: flags, defaults, validation. Bad values throw a WgError
 * naming the flag (the CLI turns it into exit code 2).
 */
import { parseArgs } from 'node:util';
import { WgError } from '../../errors.js';

export type Backend = 'auto' | 'userspace' | 'kernel';

export interface PortRange {
  readonly from: number;
  readonly to: number;
}

export interface AgentOptions {
  readonly kubeconfig: string | undefined;
  readonly nodeName: string;
  readonly interface: string;
  readonly port: number;
  readonly keyFile: string;
  /** host:port; an empty host means every address. Empty string disables the server. */
  readonly metricsAddr: string;
  /** 'auto' or a fixed MTU. */
  readonly mtu: 'auto' | number;
  readonly hostEncryption: boolean;
  readonly strict: boolean;
  readonly exemptPorts: readonly PortRange[];
  readonly backend: Backend;
  readonly cleanup: boolean;
  /** Wait for a daemon started by someone else (the DaemonSet's daemon container). */
  readonly externalDaemon: boolean;
  readonly table: number;
  readonly fwmark: number;
  readonly rulePriority: number;
  readonly resyncMs: number;
  readonly watchTimeoutSeconds: number;
  readonly silenceMs: number;
  readonly backoffMaxMs: number;
  readonly logLevel: 'error' | 'info' | 'debug';
}

export const AGENT_USAGE = `Usage: wireguard-ts k8s [options]      (as root, on every node; a DaemonSet runs it)
  --kubeconfig FILE        kubeconfig (default: in-cluster service account)
  --node-name NAME         this node (default $NODE_NAME)
  --interface NAME         WireGuard interface (default wg-ts)
  --port N                 UDP listen port (default 51820)
  --key-file FILE          persistent private key (default /var/lib/wireguard-ts/private.key)
  --metrics-addr ADDR      metrics and probes, host:port (default :9586; "" disables)
  --mtu auto|N             device MTU (auto: uplink - 80, or - 60 when all IPv4)
  --host-encryption        encrypt node-to-node traffic too
  --exempt-ports LIST      TCP ports to control-plane nodes left out of host encryption
                           (default 6443,2379-2380)
  --strict                 drop pod traffic to nodes without a key instead of sending plaintext
  --backend auto|userspace|kernel   (default auto: kernel module when present)
  --external-daemon        do not start the daemon; wait for one (DaemonSet daemon container)
  --cleanup                remove routes, rules, the device and our Node annotations, then exit
  --table N --fwmark N --rule-priority N   policy routing (defaults 51820, 0x80000, 100)
  --resync SECONDS         periodic full reconcile (default 30)
  --watch-timeout SECONDS --relist-silence SECONDS --backoff-max SECONDS   watch tuning
  --log-level error|info|debug   (default $LOG_LEVEL, else info)
  -h, --help               this text`;

function int(flag: string, v: string, min: number, max: number): number {
  const n = /^0x[0-9a-f]+$/i.test(v) ? parseInt(v, 16) : /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new WgError(
      'ERR_INVALID_VALUE',
      `--${flag}: "${v}" is not a number in ${min}..${max}`,
      flag,
    );
  }
  return n;
}

export function parsePortRanges(flag: string, s: string): PortRange[] {
  if (s.trim() === '') return [];
  return s.split(',').map((part) => {
    const [a, b] = part.trim().split('-');
    const from = int(flag, a ?? '', 1, 65535);
    const to = b === undefined ? from : int(flag, b, from, 65535);
    return { from, to };
  });
}

export function parseAgentOptions(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): AgentOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        kubeconfig: { type: 'string' },
        'node-name': { type: 'string' },
        interface: { type: 'string', default: 'wg-ts' },
        port: { type: 'string', default: '51820' },
        'key-file': { type: 'string', default: '/var/lib/wireguard-ts/private.key' },
        'metrics-addr': { type: 'string', default: ':9586' },
        mtu: { type: 'string', default: 'auto' },
        'host-encryption': { type: 'boolean', default: false },
        'exempt-ports': { type: 'string', default: '6443,2379-2380' },
        strict: { type: 'boolean', default: false },
        backend: { type: 'string', default: 'auto' },
        'external-daemon': { type: 'boolean', default: false },
        cleanup: { type: 'boolean', default: false },
        table: { type: 'string', default: '51820' },
        fwmark: { type: 'string', default: '0x80000' },
        'rule-priority': { type: 'string', default: '100' },
        resync: { type: 'string', default: '30' },
        'watch-timeout': { type: 'string', default: '300' },
        'relist-silence': { type: 'string', default: '600' },
        'backoff-max': { type: 'string', default: '30' },
        'log-level': { type: 'string', default: env.LOG_LEVEL ?? 'info' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new WgError('ERR_INVALID_CONFIG', `k8s: ${(err as Error).message}`);
  }
  if (values.help) throw new WgError('ERR_INVALID_CONFIG', AGENT_USAGE);
  const nodeName = values['node-name'] ?? env.NODE_NAME ?? '';
  if (!nodeName)
    throw new WgError('ERR_INVALID_CONFIG', '--node-name (or $NODE_NAME) is required', 'node-name');
  const ifname = values.interface;
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(ifname)) {
    throw new WgError(
      'ERR_INVALID_VALUE',
      `--interface: "${ifname}" is not a valid interface name`,
      'interface',
    );
  }
  const mtu = values.mtu === 'auto' ? 'auto' : int('mtu', values.mtu, 1280, 65535);
  const backend = values.backend;
  if (backend !== 'auto' && backend !== 'userspace' && backend !== 'kernel') {
    throw new WgError(
      'ERR_INVALID_VALUE',
      `--backend: "${backend}" is not auto, userspace or kernel`,
      'backend',
    );
  }
  const logLevel = values['log-level'] === 'verbose' ? 'debug' : values['log-level'];
  if (logLevel !== 'error' && logLevel !== 'info' && logLevel !== 'debug') {
    throw new WgError('ERR_INVALID_VALUE', `--log-level: "${logLevel}"`, 'log-level');
  }
  const fwmark = int('fwmark', values.fwmark, 1, 0xffffffff);
  return {
    kubeconfig: values.kubeconfig,
    nodeName,
    interface: ifname,
    port: int('port', values.port, 1, 65535),
    keyFile: values['key-file'],
    metricsAddr: values['metrics-addr'],
    mtu,
    hostEncryption: values['host-encryption'],
    strict: values.strict,
    exemptPorts: parsePortRanges('exempt-ports', values['exempt-ports']),
    backend,
    cleanup: values.cleanup,
    externalDaemon: values['external-daemon'],
    table: int('table', values.table, 1, 0xfffffffe),
    fwmark,
    rulePriority: int('rule-priority', values['rule-priority'], 2, 32000),
    resyncMs: int('resync', values.resync, 1, 86400) * 1000,
    watchTimeoutSeconds: int('watch-timeout', values['watch-timeout'], 1, 3600),
    silenceMs: int('relist-silence', values['relist-silence'], 1, 86400) * 1000,
    backoffMaxMs: int('backoff-max', values['backoff-max'], 1, 3600) * 1000,
    logLevel,
  };
}
