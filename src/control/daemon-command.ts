/**
 * The command that starts a userspace WireGuard daemon, for `up` and the Kubernetes agent alike:
 * `$WG_TS_DAEMON` split on whitespace (e.g. "wireguard-go" or "wireguard-go --foreground"), or
 * this package's own launcher run by the current node.
 */
import { fileURLToPath } from 'node:url';

export function daemonCommand(env: NodeJS.ProcessEnv = process.env): {
  file: string;
  args: string[];
} {
  const override = env['WG_TS_DAEMON']?.trim();
  if (override) {
    const [file, ...args] = override.split(/\s+/);
    return { file: file!, args };
  }
  const launcher = fileURLToPath(new URL('../../../bin/wireguard-ts', import.meta.url));
  return { file: process.execPath, args: [launcher] };
}
