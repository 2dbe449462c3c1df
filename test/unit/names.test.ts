// Names that say one thing: LOG_LEVEL=verbose is debug in the daemon and the agent, "auto" MTU
// is the link MTU - 80 in `up` and the agent, and the agent's metrics register no counter that
// nothing increments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { logLevelNamed, parseLogLevel } from '../../src/control/log.js';
import { parseAgentOptions } from '../../src/control/k8s/options.js';
import { tunnelMtu } from '../../src/control/mtu.js';
import { AgentMetrics, type MetricsSource } from '../../src/control/k8s/metrics.js';

test('LOG_LEVEL=verbose means debug for the daemon and the agent', () => {
  assert.equal(parseLogLevel('verbose'), 'debug');
  assert.equal(parseLogLevel('VERBOSE'), 'debug');
  assert.equal(parseLogLevel('info'), 'info');
  assert.equal(parseLogLevel(undefined), 'error');
  assert.equal(parseLogLevel('nonsense'), 'error');
  assert.equal(logLevelNamed('nonsense'), null);
  const agent = parseAgentOptions(['--node-name', 'n1', '--log-level', 'verbose'], {});
  assert.equal(agent.logLevel, parseLogLevel('verbose'));
});

test('auto MTU is the link MTU - 80 everywhere', () => {
  assert.equal(tunnelMtu(1500), 1420);
  assert.equal(tunnelMtu(9000), 8920);
});

test('the agent registers no counter that nothing increments', () => {
  // Registration only; the source is read when scraped.
  const m = new AgentMetrics({} as MetricsSource);
  assert.ok(m.registry.getSingleMetric('wireguard_ts_agent_watch_events_total'));
  assert.equal(m.registry.getSingleMetric('wireguard_ts_agent_node_lists_total'), undefined);
});
