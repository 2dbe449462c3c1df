/**
 * Preloaded into wireguard-ts daemons by `bench --cpu-prof DIR` (through NODE_OPTIONS=--import,
 * since Node refuses --cpu-prof there): profiles the main thread from start to exit with the
 * in-process inspector and writes DIR/wireguard-ts-<pid>.cpuprofile, loadable in Chrome DevTools.
 * The daemon exits through process.exit on SIGTERM, which still runs 'exit' listeners, and an
 * in-process inspector session answers synchronously, so the profile is complete.
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';

export const CPU_PROF_DIR_ENV = 'WG_TS_BENCH_CPU_PROF_DIR';

const dir = process.env[CPU_PROF_DIR_ENV];
if (dir && isMainThread) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.start');
  process.on('exit', () => {
    session.post('Profiler.stop', (err, res) => {
      if (!err)
        writeFileSync(
          join(dir, `wireguard-ts-${process.pid}.cpuprofile`),
          JSON.stringify(res.profile),
        );
    });
  });
}
