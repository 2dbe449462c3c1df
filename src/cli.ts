/**
 * The composition root: parses the command line and hands off to the daemon, the key tools,
 * `up`/`down`, the Kubernetes agent or the benchmark. Exit codes: 0 ok, 1 runtime failure,
 * 2 usage or configuration error.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WgError } from './errors.js';
import {
  generatePresharedKey,
  generatePrivateKey,
  keyFromBase64,
  keyToBase64,
  publicKey,
} from './noise/keys.js';
import { daemonize, runDevice, validInterfaceName } from './daemon.js';
import { VERSION } from './version.js';

const USAGE = `Usage: wireguard-ts [-f/--foreground] INTERFACE-NAME
       wireguard-ts up CONFIG-FILE | down INTERFACE-NAME|CONFIG-FILE
       wireguard-ts genkey | pubkey | genpsk
       wireguard-ts k8s [options]      (Kubernetes node agent)
       wireguard-ts bench [options]    (throughput benchmark)
       wireguard-ts --version
  -f, --foreground   stay in the foreground (also WG_PROCESS_FOREGROUND=1)
  --version          print the version
Every command takes --help.
`;

/** Help of the commands that have no options of their own; k8s and bench answer theirs. */
const COMMAND_USAGE: Readonly<Record<string, string>> = {
  up: `Usage: wireguard-ts up CONFIG-FILE
  Starts a daemon for the wg-quick file's interface and applies keys, peers, addresses, MTU and
  routes. CONFIG-FILE is a path, or a name looked up as /etc/wireguard/NAME.conf.
`,
  down: `Usage: wireguard-ts down INTERFACE-NAME|CONFIG-FILE
  Removes the routes and rules \`up\` added and the interface (which ends its daemon).
`,
  genkey: `Usage: wireguard-ts genkey
  Prints a new private key (base64), as wg genkey.
`,
  pubkey: `Usage: wireguard-ts pubkey < PRIVATE-KEY
  Prints the public key of the private key read from standard input, as wg pubkey.
`,
  genpsk: `Usage: wireguard-ts genpsk
  Prints a new preshared key (base64), as wg genpsk.
`,
};

function usage(): number {
  process.stderr.write(USAGE);
  return 2;
}

function wantsHelp(args: readonly string[]): boolean {
  return args.includes('--help') || args.includes('-h');
}

function pubkeyFromStdin(): number {
  let input: string;
  try {
    input = readFileSync(0, 'utf8');
  } catch {
    input = '';
  }
  try {
    const priv = keyFromBase64(input.trim(), 'private key');
    process.stdout.write(`${keyToBase64(publicKey(priv))}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`pubkey: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

export async function run(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const commandHelp =
    cmd !== undefined && Object.hasOwn(COMMAND_USAGE, cmd) ? COMMAND_USAGE[cmd] : undefined;
  if (commandHelp !== undefined && wantsHelp(rest)) {
    process.stdout.write(commandHelp);
    return 0;
  }
  switch (cmd) {
    case undefined:
      return usage();
    case '-h':
    case '--help':
      // Asked for, help is the answer rather than an error: stdout and exit 0.
      process.stdout.write(USAGE);
      return 0;
    case '--version':
    case '-v':
      process.stdout.write(
        `wireguard-ts v${VERSION}\n\nUserspace WireGuard daemon in TypeScript.\n`,
      );
      return 0;
    case 'genkey':
      process.stdout.write(`${keyToBase64(generatePrivateKey())}\n`);
      return 0;
    case 'genpsk':
      process.stdout.write(`${keyToBase64(generatePresharedKey())}\n`);
      return 0;
    case 'pubkey':
      return pubkeyFromStdin();
    case 'up':
    case 'down': {
      const up = await import('./control/up.js');
      return cmd === 'up' ? up.cmdUp(rest) : up.cmdDown(rest);
    }
    case 'k8s': {
      const k8s = await import('./control/k8s/main.js');
      return k8s.runAgent(rest);
    }
    case 'bench': {
      // bench/ is compiled next to src/ in dist/; resolved at run time so src/ does not depend on it.
      const benchUrl = new URL('../bench/main.js', import.meta.url).href;
      const bench = (await import(benchUrl)) as { runBench(a: string[]): Promise<number> };
      return bench.runBench(rest);
    }
    default:
      break;
  }
  let foreground = process.env.WG_PROCESS_FOREGROUND === '1';
  const args = [...argv];
  if (args[0] === '-f' || args[0] === '--foreground') {
    foreground = true;
    args.shift();
  }
  if (args.length !== 1 || args[0]!.startsWith('-')) return usage();
  const ifname = args[0]!;
  if (!validInterfaceName(ifname)) {
    process.stderr.write(`wireguard-ts: invalid interface name "${ifname}"\n`);
    return 2;
  }
  return foreground ? runDevice(ifname) : daemonize(ifname);
}

export async function main(argv: string[]): Promise<void> {
  let code: number;
  try {
    code = await run(argv);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`wireguard-ts: ${msg}\n`);
    code = err instanceof WgError && err.code.startsWith('ERR_INVALID') ? 2 : 1;
  }
  // Explicit: a daemonizing parent must not linger on handles its child inherited.
  process.exit(code);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  void main(process.argv.slice(2));
}
