// No error repeats key material: every malformed shape of a PrivateKey or PresharedKey line in a
// config file, through parseConfigFile and through `wireguard-ts up` (its stderr), and every
// line the UAPI server logs, is searched for any 8-character piece of the key.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfigFile } from '../../src/control/config-file.js';
import { listenUapi, type UapiLogLevel } from '../../src/control/uapi-server.js';
import { generatePrivateKey as genkey, keyToBase64, keyToHex } from '../../src/noise/keys.js';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));
const PUB = keyToBase64(new Uint8Array(32).fill(1));

/** The first 8-character piece of `secret` that `text` contains, or null. */
function leak(text: string, secret: string): string | null {
  for (let i = 0; i + 8 <= secret.length; i++) {
    const piece = secret.slice(i, i + 8);
    if (text.includes(piece)) return piece;
  }
  return null;
}

/** Every malformed way a key line can be written, with the key `k` (base64). */
function shapes(name: string, k: string): [string, string][] {
  return [
    ['no =', `${name} ${k}`],
    ['colon', `${name}: ${k}`],
    ['colon, no space', `${name}:${k}`],
    ['no = and no padding', `${name} ${k.slice(0, -1)}`],
    ['key alone', k],
    ['key alone, no padding', k.slice(0, -1)],
    ['key as the name', `${k} = 1`],
    ['extra words', `${name} = ${k} extra words`],
    ['two keys', `${name} = ${k} ${k}`],
    ['bad base64', `${name} = ${k.slice(0, 20)}!${k.slice(21)}`],
    ['too short', `${name} = ${k.slice(0, 40)}=`],
    ['too long', `${name} = ${k.slice(0, 43)}AAAA=`],
    ['stray bits', `${name} = ${k.slice(0, 42)}B=`],
    ['hex instead of base64', `${name} = ${Buffer.from(k, 'base64').toString('hex')}`],
    ['quoted', `${name} = "${k}"`],
    ['on the section line', `[Interface] ${name} = ${k}`],
    ['in the section name', `[${k}]`],
    ['as another key', `ListenPort = ${k}`],
    ['in an address', `Address = ${k}/24`],
    ['twice =', `${name} == ${k}`],
  ];
}

function configs(name: string, k: string): [string, string][] {
  const other = keyToBase64(genkey());
  return shapes(name, k).map(([shape, line]) => {
    const text =
      name === 'PrivateKey'
        ? `[Interface]\n${line}\n`
        : `[Interface]\nPrivateKey = ${other}\n[Peer]\nPublicKey = ${PUB}\n${line}\n`;
    return [shape, text];
  });
}

describe('config file errors name no key', () => {
  for (const name of ['PrivateKey', 'PresharedKey']) {
    it(`${name}: every malformed shape is refused without a piece of the key`, () => {
      for (let round = 0; round < 20; round++) {
        const k = keyToBase64(genkey());
        for (const [shape, text] of configs(name, k)) {
          let message = '';
          try {
            parseConfigFile(text, 'wg0.conf');
          } catch (e) {
            message = `${(e as Error).message} ${String((e as { field?: unknown }).field)}`;
          }
          assert.notEqual(message, '', `${shape}: accepted`);
          const piece = leak(message, k);
          assert.equal(piece, null, `${shape}: "${message}" contains "${piece}"`);
        }
      }
    });
  }

  it('still names the line and what is wrong', () => {
    const k = keyToBase64(genkey());
    assert.throws(() => parseConfigFile(`[Interface]\nPrivateKey ${k}\n`, 'wg0.conf'), {
      message: /^wg0\.conf:2: expected "Key = Value", got a line starting PrivateKey$/,
    });
    assert.throws(() => parseConfigFile(`[Interface]\nPrivateKey = ${k}x\n`, 'wg0.conf'), {
      message: 'wg0.conf:2: PrivateKey is not a valid key (base64 of 32 bytes)',
    });
    assert.throws(() => parseConfigFile(`[Interface]\n${k}\n`, 'wg0.conf'), {
      message: /got a line starting \(\d+ characters, not shown\)$/,
    });
  });

  it('`wireguard-ts up` prints none of it to stderr', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgts-secrets-'));
    try {
      // One process per shape: the PrivateKey shapes (PresharedKey ones go through the same
      // parser, checked above).
      for (const name of ['PrivateKey']) {
        const k = keyToBase64(genkey());
        for (const [shape, text] of configs(name, k)) {
          const file = join(dir, 'wgs0.conf');
          writeFileSync(file, text, { mode: 0o600 });
          const r = spawnSync(process.execPath, [CLI, 'up', file], { encoding: 'utf8' });
          assert.notEqual(r.status, 0, `${shape}: up accepted it`);
          assert.match(r.stderr, /wgs0\.conf:\d+:/, `${shape}: ${r.stderr}`);
          const piece = leak(`${r.stdout}${r.stderr}`, k);
          assert.equal(piece, null, `${shape}: output contains "${piece}":\n${r.stderr}`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('UAPI server logs name no key', () => {
  it('logs no piece of a line without "=", nor of a key used as a key name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgts-uapi-'));
    const logs: string[] = [];
    const server = await listenUapi({
      ifname: 'wgsec0',
      dir,
      handler: {
        get: () => ({ privateKey: null, listenPort: 0, fwmark: 0, peers: [] }),
        set: () => 0,
      },
      log: (_level: UapiLogLevel, msg: string) => logs.push(msg),
    });
    const path = server.path;
    const send = (text: string) =>
      new Promise<void>((resolve) => {
        const s = connect(path);
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.end(text);
        s.resume();
      });
    try {
      const k = keyToBase64(genkey());
      const hex = keyToHex(genkey());
      const lines = [
        `${k}\n`, // a pasted key as the operation (its padding is the only "=")
        `${k.slice(0, -1)}\n`, // no "=" at all
        `private_key ${hex}\n`,
        `set=1\n${k}\n\n`, // a pasted key inside a set request
        `set=1\n${hex}\n\n`,
        `set=1\nprivate_key ${hex}\n\n`,
        `set=1\nlisten_port=${hex}\n\n`,
      ];
      for (const line of lines) await send(line);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(logs.length >= lines.length - 1, logs.join('\n'));
      for (const msg of logs) {
        assert.equal(leak(msg, k), null, msg);
        assert.equal(leak(msg, hex), null, msg);
      }
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
