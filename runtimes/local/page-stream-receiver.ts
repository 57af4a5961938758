/**
 * The target side of the `stream` mechanism: a port on which the target's agent receives the pages of
 * one image while the source's CRIU dumps them (`criu dump --page-server`). Every connection is handed to
 * a fresh `criu page-server --ps-socket` session that writes `pagemap-*.img` and `pages-*.img` into the
 * image's staging directory; the agent keeps the port, so a checkpoint retried after a failure simply
 * connects again. CRIU does the TLS itself (gnutls, client certificates of the cluster's CA): a stream
 * from anything without one is refused in the handshake and its session fails.
 *
 * The image transfer (../shared/image-transfer) then brings the other files and, at its commit, asks
 * `settled()` whether the last session ended complete; only then is the image marked complete.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import * as path from 'node:path';
import { failpoint } from '../../lib/failpoints';
import { criuTlsArgs, type TlsFiles } from './pki';

interface Session {
  n: number;
  /** The page server's exit code, once it ended. */
  done: Promise<number>;
  log: string;
}

export class PageStreamReceiver {
  private readonly sessions: Session[] = [];
  private server!: Server;
  private port = 0;

  private constructor(
    readonly imageId: string,
    private readonly staging: string,
    private readonly o: { node: string; host: string; criu: string; tls: TlsFiles; log: (line: string) => void },
  ) {}

  static async open(imageId: string, staging: string, o: PageStreamReceiver['o']): Promise<PageStreamReceiver> {
    const r = new PageStreamReceiver(imageId, staging, o);
    mkdirSync(staging, { recursive: true });
    // Paused: the socket's bytes are CRIU's to read, including the TLS handshake.
    r.server = createServer({ pauseOnConnect: true }, (sock) => {
      sock.on('error', () => undefined);
      r.accept(sock).catch((err: Error) => {
        o.log(`page stream of ${imageId}: ${err.message}`);
        sock.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      r.server.once('error', reject);
      r.server.listen(0, o.host, () => resolve());
    });
    r.port = (r.server.address() as AddressInfo).port;
    return r;
  }

  get address(): string {
    return `${this.o.host}:${this.port}`;
  }

  private async accept(sock: Socket): Promise<void> {
    const n = this.sessions.length + 1;
    const log = `page-server-${n}.log`;
    // Fault injection: the stream passes a relay that flips one byte on its way (TLS must refuse it).
    const given = (await failpoint(`${this.o.node}/receive-stream`)) === 'corrupt' ? await corruptingRelay(sock) : sock;
    const out = openSync(path.join(this.staging, `page-server-${n}.out`), 'w');
    // The socket is the page server's stdin: libuv makes a child's stdio blocking, which CRIU's
    // MSG_WAITALL reads need (Node keeps its sockets non-blocking, and the flag is shared with the child).
    const child = spawn(
      this.o.criu,
      ['page-server', '-D', this.staging, '--ps-socket', '0', ...criuTlsArgs(this.o.tls), '--tls-no-cn-verify', '-o', log, '-v2'],
      { cwd: this.staging, stdio: [given, out, out], detached: true },
    );
    closeSync(out);
    const done = new Promise<number>((resolve) => {
      child.once('error', () => resolve(-1));
      child.once('exit', (code, signal) => resolve(signal ? -1 : (code ?? -1)));
    });
    // The child has its own copy of the descriptor; ours must not read a byte of the stream.
    given.destroy();
    this.sessions.push({ n, done, log });
    void done.then((code) => {
      if (code !== 0) this.o.log(`page stream of ${this.imageId}: session ${n} failed (exit ${code}): ${this.why({ n, done, log })}`);
    });
  }

  private why(s: Session): string {
    const file = path.join(this.staging, s.log);
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => /Error|error/.test(l) && !/RLIMIT_NOFILE/.test(l)) : [];
    return lines.slice(-3).join(' | ') || 'no error in its log';
  }

  /**
   * Waits for the sessions to end; null if the last one received a complete set of pages, else why not.
   * Called when the rest of the image has arrived, so the dump that streamed it is over.
   */
  async settled(): Promise<string | null> {
    const last = this.sessions[this.sessions.length - 1];
    if (!last) return `no page stream reached ${this.address}`;
    const codes = await Promise.all(this.sessions.map((s) => s.done));
    if (codes[codes.length - 1] !== 0) return `its last session ended with exit ${codes[codes.length - 1]}: ${this.why(last)}`;
    if (!readdirSync(this.staging).some((f) => /^pagemap-\d+\.img$/.test(f))) return 'it ended without a pagemap';
    return null;
  }

  close(): void {
    this.server.close();
  }
}

/**
 * A loopback relay between the source's connection and the page server's: forwards both ways, but flips
 * one byte of the source's stream once the TLS handshake is well past (after 64 KB).
 */
async function corruptingRelay(from: Socket): Promise<Socket> {
  const inner = createServer();
  await new Promise<void>((resolve) => inner.listen(0, '127.0.0.1', () => resolve()));
  const accepted = new Promise<Socket>((resolve) => inner.once('connection', resolve));
  const to = connect((inner.address() as AddressInfo).port, '127.0.0.1');
  const served = await accepted;
  inner.close();
  // A relay's sockets die with either end; their errors are that, not the agent's.
  for (const s of [from, to, served]) s.on('error', () => undefined);
  let seen = 0;
  let flipped = false;
  from.on('data', (d: Buffer) => {
    if (!flipped && seen + d.length > 65536) {
      d = Buffer.from(d);
      d[Math.max(0, 65536 - seen)] ^= 0x01;
      flipped = true;
    }
    seen += d.length;
    to.write(d);
  });
  to.on('data', (d: Buffer) => from.write(d));
  from.on('close', () => to.destroy());
  to.on('close', () => from.destroy());
  from.resume();
  // The page server gets the far end; the relay keeps the other two.
  return served;
}
