/**
 * The network lab, for integration tests, the benchmark and the demo: namespaces, veths and
 * processes with cleanup (lab.ts), WireGuard daemons and `wg` (daemon.ts), ready pairs
 * (pair.ts), traffic with integrity checks (traffic.ts), underlay capture (capture.ts) and
 * polling (wait.ts). See each file's header for usage.
 */
export * from './lab.js';
export * from './wait.js';
export * from './daemon.js';
export * from './pair.js';
export * from './traffic.js';
export * from './capture.js';
export * from './relay.js';
export * from './blaster.js';
export * from './proc.js';
