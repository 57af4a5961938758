/**
 * Moves an image directory between node agents over HTTP, as one stream per image: each file is read once
 * on the source, hashed with SHA-256 on the way, and written once on the target, which hashes what it
 * received on the way too and refuses the image at the first mismatch. Only an image committed complete
 * (the stream's last frame, after every file checked) can be restored. Sending again is harmless.
 *
 * The stream (`PUT /images/<id>/stream`) is a sequence of frames `[u32 header length][header JSON]
 * [data][32-byte SHA-256 of the data]`. A header names a file and its size; `extents` makes it sparse:
 * the data is those byte ranges only, written at their offsets (a lazy restore's pages file holds only
 * the pages the restore reads itself). The last frame's header is `{"end": true, "files": n}`, with
 * `pageStream: true` when the pages arrived separately through the target's page stream (the receiver's
 * `pageStream` hook then says whether that stream ended complete).
 *
 * With a shared secret (the kubernetes runtime's agents hold one from a Secret), every request carries a
 * token for its image, an HMAC of the image id under the secret: an agent accepts only images that a
 * holder of the secret sends, and the token, derived on each side, never travels through a workflow.
 */
import { createHash, createHmac, timingSafeEqual, type Hash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { Agent, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import * as path from 'node:path';
import { failpoint } from '../../lib/failpoints';

export const COMPLETE_MARK = '.complete';
const SAFE = /^[A-Za-z0-9._-]+$/;
const HASH_BYTES = 32;
/** Big enough that a gigabyte is a few hundred writes, small enough to stay out of the way of other work. */
const CHUNK = 4 * 1024 * 1024;

/** The credential for sending image `imageId`, from the agents' shared secret. */
export function transferToken(secret: string, imageId: string): string {
  return createHmac('sha256', secret).update(`ms2m-image:${imageId}`).digest('hex');
}

function authorized(secret: string, imageId: string, header: string | undefined): boolean {
  const given = Buffer.from(/^Bearer ([0-9a-f]{64})$/.exec(header ?? '')?.[1] ?? '', 'hex');
  const wanted = Buffer.from(transferToken(secret, imageId), 'hex');
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}
/** Files the agent keeps next to an image that are not part of it. */
const BOOKKEEPING = /^(\.complete|result\.json|lazy-pages\.socket)$|\.(log|pid|part|exit|out)$/;

/** A byte range of a file. */
export interface Extent {
  offset: number;
  length: number;
}

interface FileHeader {
  name: string;
  /** The file's full size on the target. */
  size: number;
  /** Only these ranges travel (a sparse file); absent: the whole file. */
  extents?: Extent[];
}

interface EndHeader {
  end: true;
  files: number;
  pageStream?: boolean;
}

/** The files of an image, without the bookkeeping the agent keeps beside them. */
export function imageFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && SAFE.test(e.name) && !BOOKKEEPING.test(e.name))
    .map((e) => e.name);
}

const keepAlive = new Agent({ keepAlive: true, maxSockets: 4 });

/** A frame's header as it travels (exported for the tests that forge streams). */
export function frameHeader(h: FileHeader | EndHeader): Buffer {
  const json = Buffer.from(JSON.stringify(h));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  return Buffer.concat([len, json]);
}

export interface SendOptions {
  secret?: string;
  /** Files to send sparse: only these ranges of them. */
  sparse?: Map<string, Extent[]>;
  /** Leave out these files (they reach the target another way) and say so in the last frame. */
  pageStream?: { files: string[] };
}

/** Asks the agent at `baseUrl` where it receives the pages of `imageId` during their dump (host:port). */
export async function askPageStream(baseUrl: string, imageId: string, opts: { secret?: string } = {}): Promise<string> {
  const auth: Record<string, string> = opts.secret ? { authorization: `Bearer ${transferToken(opts.secret, imageId)}` } : {};
  const res = await fetch(`${baseUrl}/images/${imageId}/page-stream`, { method: 'POST', headers: auth });
  const body = await res.text();
  if (!res.ok) throw new Error(`asking ${baseUrl} for a page stream of image ${imageId}: HTTP ${res.status} ${body}`);
  return body.trim();
}

export async function sendImage(
  dir: string,
  baseUrl: string,
  imageId: string,
  onFile: (name: string, bytes: number) => void,
  opts: SendOptions = {},
): Promise<{ bytes: number; files: number }> {
  const auth: Record<string, string> = opts.secret ? { authorization: `Bearer ${transferToken(opts.secret, imageId)}` } : {};
  const skip = new Set(opts.pageStream?.files ?? []);
  const names = imageFiles(dir).filter((n) => !skip.has(n));
  let bytes = 0;
  // A receiver that refuses the image answers at once: sending the rest would be for nothing.
  let answered = false;
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = httpRequest(`${baseUrl}/images/${imageId}/stream`, { method: 'PUT', agent: keepAlive, headers: { 'content-type': 'application/x-ms2m-image', ...auth } }, (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    const write = (b: Buffer): Promise<void> | void => {
      if (!req.write(b)) return new Promise((r) => req.once('drain', r));
    };
    (async () => {
      for (const name of names) {
        if (answered) return req.end();
        const fd = openSync(path.join(dir, name), 'r');
        try {
          const size = fstatSync(fd).size;
          const extents = opts.sparse?.get(name);
          await write(frameHeader({ name, size, ...(extents ? { extents } : {}) }));
          const hash = createHash('sha256');
          let sent = 0;
          for (const e of extents ?? [{ offset: 0, length: size }]) {
            for (let at = 0; at < e.length; ) {
              // A new buffer each time: the request holds on to what it was given until it is flushed.
              const chunk = Buffer.allocUnsafe(Math.min(CHUNK, e.length - at));
              if (answered) return req.end();
              const n = readSync(fd, chunk, 0, chunk.length, e.offset + at);
              if (n !== chunk.length) throw new Error(`${name} is shorter than ${e.offset + e.length} bytes`);
              hash.update(chunk);
              await write(chunk);
              at += n;
              sent += n;
            }
          }
          await write(hash.digest());
          bytes += sent;
          onFile(name, sent);
        } finally {
          closeSync(fd);
        }
      }
      await write(frameHeader({ end: true, files: names.length, ...(opts.pageStream ? { pageStream: true } : {}) }));
      req.end();
    })().catch((err: Error) => req.destroy(err));
  });
  const res = await response;
  if (res.status >= 300) throw new Error(`sending image ${imageId} to ${baseUrl}: HTTP ${res.status} ${res.body}`);
  return { bytes, files: names.length };
}

function reply(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' });
  res.end(body);
}

class Refused extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** One file being received: written at its offsets, hashed as it arrives. */
class Incoming {
  private readonly fd: number;
  private readonly hash: Hash = createHash('sha256');
  private readonly ranges: Extent[];
  private range = 0;
  private inRange = 0;
  remaining: number;

  constructor(
    readonly dir: string,
    readonly h: FileHeader,
  ) {
    if (!SAFE.test(h.name) || BOOKKEEPING.test(h.name)) throw new Refused(422, `"${h.name}" is not an image file name`);
    this.ranges = h.extents ?? [{ offset: 0, length: h.size }];
    if (this.ranges.some((e) => e.offset < 0 || e.length < 0 || e.offset + e.length > h.size)) throw new Refused(422, `${h.name}: an extent lies outside its ${h.size} bytes`);
    this.remaining = this.ranges.reduce((a, e) => a + e.length, 0);
    this.fd = openSync(path.join(dir, `${h.name}.part`), 'w');
  }

  write(chunk: Buffer): void {
    this.hash.update(chunk);
    this.remaining -= chunk.length;
    for (let done = 0; done < chunk.length; ) {
      const e = this.ranges[this.range];
      const n = Math.min(chunk.length - done, e.length - this.inRange);
      writeSync(this.fd, chunk, done, n, e.offset + this.inRange);
      done += n;
      this.inRange += n;
      if (this.inRange === e.length) {
        this.range++;
        this.inRange = 0;
      }
    }
  }

  /** Checks the sender's SHA-256 and puts the file in place. */
  finish(expected: Buffer): void {
    try {
      ftruncateSync(this.fd, this.h.size);
    } finally {
      closeSync(this.fd);
    }
    const actual = this.hash.digest();
    if (!actual.equals(expected)) throw new Refused(422, `checksum mismatch for ${this.h.name}: expected ${expected.toString('hex')}, got ${actual.toString('hex')}`);
    renameSync(path.join(this.dir, `${this.h.name}.part`), path.join(this.dir, this.h.name));
  }

  abandon(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }
}

export interface ReceiverOptions {
  secret?: string;
  /** Opens (or finds) where this node receives the pages of image `imageId` during its dump: host:port. */
  openPageStream?: (imageId: string) => Promise<string>;
  /**
   * For an image whose pages came through the page stream: waits for that stream to end and says why
   * it is not complete, or null when it is. Its files are already in the staging directory.
   */
  pageStream?: (imageId: string) => Promise<string | null>;
}

/** Where an image is staged while it arrives (a page stream writes there too). */
export const stagingDir = (imagesDir: string, imageId: string): string => path.join(imagesDir, '.incoming', imageId);

/**
 * Request handler for the receiving side; images land in `<imagesDir>/<imageId>`. The failpoint
 * `<node>/receive-file` lets tests break the path: 'corrupt' flips a byte in transit, 'cut' drops the
 * connection mid-stream, 'fail' is a disk error.
 */
export function imageReceiver(imagesDir: string, node: string, opts: ReceiverOptions = {}) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://agent');
    const parts = url.pathname.split('/').filter(Boolean);
    if (req.method === 'GET' && url.pathname === '/healthz') return reply(res, 200, 'ok');
    if (req.method === 'POST' && parts[0] === 'images' && parts[1] && SAFE.test(parts[1]) && parts[2] === 'page-stream' && parts.length === 3) {
      req.resume();
      if (opts.secret !== undefined && !authorized(opts.secret, parts[1], req.headers.authorization)) return reply(res, 401, `image ${parts[1]}: no valid token`);
      if (!opts.openPageStream) return reply(res, 404, 'this agent receives no page streams');
      try {
        return reply(res, 200, await opts.openPageStream(parts[1]));
      } catch (err) {
        return reply(res, 500, (err as Error).message);
      }
    }
    if (parts[0] !== 'images' || !parts[1] || !SAFE.test(parts[1]) || parts.length !== 3 || parts[2] !== 'stream' || req.method !== 'PUT') {
      req.resume();
      return reply(res, 404, 'not found');
    }
    const imageId = parts[1];
    if (opts.secret !== undefined && !authorized(opts.secret, imageId, req.headers.authorization)) {
      req.resume();
      return reply(res, 401, `image ${imageId}: the request carries no valid token for it (agents must share the transfer secret)`);
    }
    try {
      const fault = await failpoint(`${node}/receive-file`);
      const final = path.join(imagesDir, imageId);
      if (existsSync(path.join(final, COMPLETE_MARK))) {
        req.resume();
        return reply(res, 200, 'already complete');
      }
      const staging = stagingDir(imagesDir, imageId);
      mkdirSync(staging, { recursive: true });
      const end = await receiveFrames(req, staging, fault);
      if (end.pageStream) {
        if (!opts.pageStream) throw new Refused(422, `image ${imageId}: its pages were to come through a page stream, and this agent has none`);
        const why = await opts.pageStream(imageId);
        if (why) throw new Refused(422, `image ${imageId}: the page stream did not complete: ${why}`);
      }
      rmSync(final, { recursive: true, force: true });
      renameSync(staging, final);
      writeFileSync(path.join(final, COMPLETE_MARK), JSON.stringify({ receivedAt: Date.now(), files: end.files }));
      return reply(res, 201, 'complete');
    } catch (err) {
      req.resume();
      if (err instanceof Refused) return reply(res, err.status, err.message);
      return reply(res, 500, (err as Error).message);
    }
  };
}

function parseHeader(b: Buffer): FileHeader | EndHeader {
  try {
    return JSON.parse(b.toString()) as FileHeader | EndHeader;
  } catch {
    throw new Refused(400, 'a frame header that is not JSON: not an image stream');
  }
}

/** Reads the frames of one image stream into `staging`; returns the last frame's header. */
async function receiveFrames(req: IncomingMessage, staging: string, fault: string | null): Promise<EndHeader> {
  let buf: Buffer = Buffer.alloc(0);
  let file: Incoming | null = null;
  let header: number | null = null; // length of the header being read, once its 4 bytes are in
  let hashWanted = false;
  let files = 0;
  let corrupt = fault === 'corrupt';
  const cut = fault === 'cut';
  try {
    for await (const raw of req) {
      let chunk = raw as Buffer;
      // File data goes straight through; only headers and hashes are gathered in `buf`.
      while (chunk.length > 0 || buf.length > 0) {
        if (file && !hashWanted) {
          const n = Math.min(chunk.length, file.remaining);
          if (n > 0 && corrupt) {
            chunk = Buffer.from(chunk);
            chunk[0] ^= 0xff;
            corrupt = false;
          }
          if (n > 0) file.write(chunk.subarray(0, n));
          if (n > 0 && cut) req.socket.destroy();
          chunk = chunk.subarray(n);
          if (file.remaining > 0) break;
          hashWanted = true;
        }
        buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
        chunk = Buffer.alloc(0);
        if (file && hashWanted) {
          if (buf.length < HASH_BYTES) break;
          file.finish(buf.subarray(0, HASH_BYTES));
          buf = buf.subarray(HASH_BYTES);
          file = null;
          hashWanted = false;
          files++;
          continue;
        }
        if (header === null) {
          if (buf.length < 4) break;
          header = buf.readUInt32BE(0);
          if (header > 1 << 20) throw new Refused(400, 'a frame header of over 1 MB: not an image stream');
          buf = buf.subarray(4);
        }
        if (buf.length < header) break;
        const h = parseHeader(buf.subarray(0, header));
        buf = buf.subarray(header);
        header = null;
        if ('end' in h) {
          if (h.files !== files) throw new Refused(422, `the stream ended after ${files} files, its last frame says ${h.files}`);
          if (buf.length) throw new Refused(400, 'bytes after the last frame');
          return h;
        }
        file = new Incoming(staging, h);
        // The data starts right after the header: hand what is buffered back to the data path.
        chunk = buf;
        buf = Buffer.alloc(0);
      }
    }
  } finally {
    file?.abandon();
  }
  throw new Refused(400, 'the stream ended before its last frame');
}
