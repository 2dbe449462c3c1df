/**
 * A throwaway certificate authority and API-server certificate for the test API server, made
 * with the openssl CLI (node 20 cannot create X.509 certificates). The server certificate names
 * the addresses the tests connect to, so clients verify it for real; nothing skips verification.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FakeTls } from './fake-apiserver.js';

/** Why a CA cannot be made here, or undefined. */
export function caSkipReason(): string | undefined {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'openssl not installed (needed for the test API server certificate)';
  }
}

/** A CA and a server certificate for `ips` (IP SANs) and localhost, written under `dir`. */
export function makeTestTls(dir: string, ips: readonly string[]): FakeTls & { caFile: string } {
  const f = (n: string) => join(dir, n);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('ca.key')]);
  run([
    'req',
    '-x509',
    '-new',
    '-key',
    f('ca.key'),
    '-sha256',
    '-days',
    '2',
    '-subj',
    '/CN=wireguard-ts test CA',
    '-out',
    f('ca.crt'),
  ]);
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('server.key')]);
  run([
    'req',
    '-new',
    '-key',
    f('server.key'),
    '-subj',
    '/CN=kube-apiserver',
    '-out',
    f('server.csr'),
  ]);
  const san = ['DNS:localhost', ...ips.map((ip) => `IP:${ip}`)].join(',');
  writeFileSync(
    f('server.ext'),
    `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n`,
  );
  run([
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.crt'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-sha256',
    '-extfile',
    f('server.ext'),
    '-out',
    f('server.crt'),
  ]);
  return {
    key: readFileSync(f('server.key'), 'utf8'),
    cert: readFileSync(f('server.crt'), 'utf8'),
    ca: readFileSync(f('ca.crt'), 'utf8'),
    caFile: f('ca.crt'),
  };
}
