// wireguard-ts's own `stats=1` UAPI operation: drop counters over the socket, refused by a
// handler without stats exactly like an unknown operation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listenUapi } from '../../src/control/uapi-server.js';
import { uapiGet, uapiStats } from '../../src/control/uapi-client.js';

const info = { privateKey: null, listenPort: 1234, fwmark: 0, peers: [] };

test('stats=1 returns the handler counters; get still works on the same socket', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wgts-stats-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const server = await listenUapi({
    ifname: 'st0',
    dir,
    handler: {
      get: () => info,
      set: () => 0,
      stats: () => [
        ['drop_bad_mac1', 7],
        ['peers', 2],
      ],
    },
  });
  t.after(() => server.close());
  const m = await uapiStats('st0', { dir });
  assert.equal(m.get('drop_bad_mac1'), 7);
  assert.equal(m.get('peers'), 2);
  assert.equal((await uapiGet('st0', { dir })).listenPort, 1234);
});

test('a handler without stats refuses stats=1 like an unknown operation', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'wgts-stats-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const server = await listenUapi({
    ifname: 'st1',
    dir,
    handler: { get: () => info, set: () => 0 },
  });
  t.after(() => server.close());
  await assert.rejects(uapiStats('st1', { dir }));
});
