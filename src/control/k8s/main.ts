/**
 * `wireguard-ts k8s`: wires options, key, Kubernetes client, backend (daemon or kernel),
 * routing, metrics and the agent, and owns the process lifecycle (signals, exit codes: 0 ok,
 * 1 runtime failure, 2 usage). Runnable directly: `node dist/src/control/k8s/main.js ...`.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WgError } from '../../errors.js';
import { run } from '../exec.js';
import { Agent, type LogFn } from './agent.js';
import {
  ensureDaemon,
  KernelBackend,
  kernelHasWireguard,
  UapiBackend,
  type WgBackend,
} from './backend.js';
import { HttpKubeApi, loadKubeConfig } from './kube-client.js';
import { AgentMetrics } from './metrics.js';
import { generatePrivateKey, publicKey as publicKeyOf } from '../../noise/keys.js';
import { loadOrCreateNodeKey } from './node-key.js';
import { AGENT_USAGE, parseAgentOptions, type AgentOptions } from './options.js';
import { Routing } from './routing.js';

const LEVELS = { error: 0, info: 1, debug: 2 } as const;

function makeLog(level: AgentOptions['logLevel']): LogFn {
  return (l, msg) => {
    if (LEVELS[l] > LEVELS[level]) return;
    process.stderr.write(`${new Date().toISOString()} ${l.toUpperCase()} k8s: ${msg}\n`);
  };
}

async function chooseBackend(
  opts: AgentOptions,
  log: LogFn,
): Promise<{ backend: WgBackend; restart?: () => Promise<void> }> {
  const useKernel =
    opts.backend === 'kernel' || (opts.backend === 'auto' && (await kernelHasWireguard()));
  if (useKernel) {
    const kb = new KernelBackend(opts.interface);
    await kb.ensureLink();
    log('info', `backend: kernel module, device ${opts.interface}`);
    return { backend: kb, restart: () => kb.ensureLink() };
  }
  const ub = new UapiBackend(opts.interface);
  if (opts.externalDaemon) {
    const deadline = Date.now() + 60_000;
    while (!(await ub.live())) {
      if (Date.now() > deadline)
        throw new WgError('ERR_SYSTEM', `no daemon serves ${opts.interface} after 60 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
    log('info', `backend: userspace, attached to the external daemon of ${opts.interface}`);
    return { backend: ub };
  }
  const started = await ensureDaemon(opts.interface);
  log(
    'info',
    `backend: userspace, ${started ? 'started' : 'reattached to'} the daemon of ${opts.interface}`,
  );
  return {
    backend: ub,
    restart: async () => {
      // A stale link without a daemon (daemon killed) must go before a new daemon can create it.
      await run('ip', ['link', 'del', opts.interface]).catch(() => undefined);
      await ensureDaemon(opts.interface);
    },
  };
}

export async function runAgent(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${AGENT_USAGE}\n`);
    return 0;
  }
  let opts: AgentOptions;
  try {
    opts = parseAgentOptions(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  const log = makeLog(opts.logLevel);
  try {
    let api: HttpKubeApi;
    try {
      api = new HttpKubeApi(loadKubeConfig(opts.kubeconfig, opts.serviceAccountDir));
    } catch (err) {
      const where = opts.kubeconfig ?? `in-cluster service account ${opts.serviceAccountDir}`;
      throw new WgError(
        'ERR_INVALID_CONFIG',
        `--kubeconfig ${where}: ${(err as Error).message}`,
        'kubeconfig',
      );
    }
    const routing = new Routing({
      ifname: opts.interface,
      table: opts.table,
      fwmark: opts.fwmark,
      rulePriority: opts.rulePriority,
      hostEncryption: opts.hostEncryption,
      strict: opts.strict,
      exemptPorts: opts.exemptPorts,
    });
    if (opts.cleanup) {
      // Cleanup needs no key: never create one on a node being uninstalled.
      const privateKey = generatePrivateKey();
      const key = {
        privateKey,
        publicKey: publicKeyOf(privateKey),
        publicKeyBase64: '',
        generated: false,
      };
      const agent = new Agent({
        api,
        backend: new UapiBackend(opts.interface),
        routing,
        key,
        opts,
        log,
      });
      await agent.cleanup();
      await run('ip', ['link', 'del', opts.interface]).catch(() => undefined);
      log('info', `cleaned up ${opts.interface}`);
      return 0;
    }
    const key = loadOrCreateNodeKey(opts.keyFile);
    log(
      'info',
      `${key.generated ? 'generated' : 'loaded'} key ${opts.keyFile}, public key ${key.publicKeyBase64}`,
    );
    const { backend, restart } = await chooseBackend(opts, log);
    let agent: Agent | null = null;
    const metrics = new AgentMetrics({
      ifname: opts.interface,
      hostname: opts.nodeName,
      publicKey: key.publicKeyBase64,
      listenPort: opts.port,
      backend: backend.kind,
      device: () => backend.get(),
      ...(backend instanceof UapiBackend ? { stats: () => backend.stats() } : {}),
      ready: () => agent?.ready() ?? false,
    });
    agent = new Agent({
      api,
      backend,
      routing,
      key,
      opts,
      log,
      metrics,
      ...(restart ? { restartDevice: restart } : {}),
    });
    agent.informer.onChange(() => metrics.watchEvents.inc());
    if (opts.metricsAddr) {
      const a = await metrics.listen(opts.metricsAddr);
      log('info', `metrics on ${a.address}:${a.port}`);
    }
    await agent.start();
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    log('info', `${signal}: stopping the agent; the device, peers and routes stay up`);
    await agent.stop();
    await metrics.close();
    return 0;
  } catch (err) {
    log('error', (err as Error).message);
    return err instanceof WgError && err.code === 'ERR_INVALID_CONFIG' ? 2 : 1;
  }
}

function isMain(): boolean {
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  void runAgent(process.argv.slice(2)).then((code) => process.exit(code));
}
