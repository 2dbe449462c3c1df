/**
 * Runs system commands (ip, wg, nft...) without a shell. Failures become WgError('ERR_SYSTEM')
 * carrying the command line and its stderr, so callers can log one clear line.
 */
import { execFile } from 'node:child_process';
import { WgError } from '../errors.js';

export interface RunOptions {
  /** Run inside this network namespace (`ip netns exec NAME ...`). */
  readonly netns?: string;
  /** Data written to the command's stdin. */
  readonly input?: string;
  readonly timeoutMs?: number;
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
}

export function run(
  file: string,
  args: readonly string[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const argv = opts.netns ? ['netns', 'exec', opts.netns, file, ...args] : [...args];
  const cmd = opts.netns ? 'ip' : file;
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      argv,
      { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const line = [cmd, ...argv].join(' ');
          const why = stderr.trim() || err.message;
          reject(new WgError('ERR_SYSTEM', `${line}: ${why}`));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
