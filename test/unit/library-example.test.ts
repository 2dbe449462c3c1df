// docs/library.md's example is a real file (docs/examples/handshake.ts), compiled with the
// project and run here, and the page shows exactly that file: the example cannot rot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { twoDevicesInMemory } from '../../docs/examples/handshake.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

test('library example: two Devices handshake and deliver the packet in memory', () => {
  const { sent, delivered, aliceToBob, alice, bob } = twoDevicesInMemory();
  assert.equal(delivered.length, 1);
  assert.deepEqual(delivered[0], sent);
  assert.equal(aliceToBob.current?.isInitiator, true);
  const dropped = (d: typeof alice) => Object.values(d.drops).reduce((a, b) => a + b, 0);
  assert.equal(dropped(alice), 0);
  assert.equal(dropped(bob), 0);
});

test('docs/library.md shows docs/examples/handshake.ts verbatim (imported as wireguard-ts)', () => {
  const file = 'docs/examples/handshake.ts';
  const source = readFileSync(`${root}${file}`, 'utf8').replaceAll(
    "'../../src/index.js'",
    "'wireguard-ts'",
  );
  const page = readFileSync(`${root}docs/library.md`, 'utf8');
  const marker = `<!-- example: ${file} -->`;
  const at = page.indexOf(marker);
  assert.notEqual(at, -1, `docs/library.md has no "${marker}" line before the example`);
  const block = /```ts\n([\s\S]*?)```/.exec(page.slice(at));
  assert.ok(block, `docs/library.md has no \`\`\`ts block after "${marker}"`);
  assert.equal(block[1], source, `the example in docs/library.md differs from ${file}`);
});
