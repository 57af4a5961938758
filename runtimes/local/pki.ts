/**
 * The local cluster's TLS identities: a CA in the cluster's home and a key and certificate per node
 * agent, signed by it, for the page streams between agents (CRIU's page server and lazy-pages daemon
 * speak TLS with client certificates through gnutls; the agents' own page server through node:tls). A
 * stream from anything without a certificate of this CA is refused in the handshake.
 *
 * Made with the openssl command (present on every Debian and in the stack's checks), once: a node's
 * files are reused while they exist, and agents starting together agree on one CA because it appears
 * under its final name by an atomic rename.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

export interface TlsFiles {
  keyFile: string;
  certFile: string;
  caFile: string;
  key: Buffer;
  cert: Buffer;
  ca: Buffer;
}

const CA_DAYS = '3650';
const NODE_DAYS = '825';

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') throw new Error('the openssl command is missing: install it (apt-get install openssl); node agents need it for their TLS certificates');
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString().trim() ?? e.message}`);
  }
}

/** The cluster's CA under `<home>/pki`, made by whichever agent gets there first. */
function clusterCa(home: string): { dir: string; cert: string; key: string } {
  const dir = path.join(home, 'pki');
  const cert = path.join(dir, 'ca.crt');
  const key = path.join(dir, 'ca.key');
  if (!existsSync(cert)) {
    mkdirSync(home, { recursive: true });
    const tmp = mkdtempSync(path.join(home, '.pki-'));
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', CA_DAYS, '-subj', '/CN=ms2m local cluster CA'], tmp);
    try {
      renameSync(tmp, dir);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // another agent's CA won
    }
  }
  return { dir, cert, key };
}

/** The agent of `node`'s key and certificate, valid for `host` (the address other agents reach it at). */
export function nodeTls(home: string, node: string, host: string): TlsFiles {
  const ca = clusterCa(home);
  const dir = path.join(home, 'nodes', node, 'tls');
  const keyFile = path.join(dir, 'agent.key');
  const certFile = path.join(dir, 'agent.crt');
  const hostFile = path.join(dir, 'host');
  if (!existsSync(certFile) || !existsSync(hostFile) || readFileSync(hostFile, 'utf8') !== host) {
    mkdirSync(dir, { recursive: true });
    const san = /^[0-9.]+$|:/.test(host) ? `IP:${host}` : `DNS:${host}`;
    writeFileSync(path.join(dir, 'ext.cnf'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'agent.key', '-out', 'agent.csr', '-subj', `/CN=${node}`], dir);
    openssl(['x509', '-req', '-in', 'agent.csr', '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-out', 'agent.crt', '-days', NODE_DAYS, '-extfile', 'ext.cnf'], dir);
    writeFileSync(hostFile, host);
  }
  return { keyFile, certFile, caFile: ca.cert, key: readFileSync(keyFile), cert: readFileSync(certFile), ca: readFileSync(ca.cert) };
}

/** CRIU's options for a TLS page stream with these files. */
export function criuTlsArgs(tls: TlsFiles): string[] {
  return ['--tls', '--tls-cacert', tls.caFile, '--tls-cert', tls.certFile, '--tls-key', tls.keyFile];
}
