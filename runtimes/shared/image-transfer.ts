/**
 * Moves an image directory between node agents over HTTP. Every file travels with its SHA-256; the
 * receiver verifies each file as it lands and the whole manifest at commit, and only a committed image
 * (marked complete) can be restored. Re-sending the same image is harmless.
 *
 * With a shared secret (the kubernetes runtime's agents hold one from a Secret), every request carries a
 * token for its image, an HMAC of the image id under the secret: an agent accepts only images that a
 * holder of the secret sends, and the token, derived on each side, never travels through a workflow.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { Agent, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { failpoint } from '../../lib/failpoints';

export const COMPLETE_MARK = '.complete';
const SAFE = /^[A-Za-z0-9._-]+$/;
const HASH_HEADER = 'x-ms2m-sha256';

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
const BOOKKEEPING = /^(\.complete|result\.json)$|\.(log|pid|part|sha256)$/;

export interface ManifestEntry {
  name: string;
  size: number;
  sha256: string;
}

/** The files of an image, without the bookkeeping the agent keeps beside them. */
export function imageFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && SAFE.test(e.name) && !BOOKKEEPING.test(e.name))
    .map((e) => e.name);
}

/**
 * Streams a file with node:http (WHATWG streams through fetch cost several times more CPU per megabyte)
 * and hashes it on the way: the SHA-256 follows the body as an HTTP trailer, so the file is read once.
 */
function put(url: string, file: string, auth: Record<string, string>): Promise<{ status: number; body: string; size: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let size = 0;
    const req = httpRequest(url, { method: 'PUT', agent: keepAlive, headers: { trailer: HASH_HEADER, ...auth } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, size, sha256 }));
    });
    let sha256 = '';
    req.on('error', reject);
    const src = createReadStream(file, { highWaterMark: 1024 * 1024 });
    src.on('error', reject);
    src.on('data', (chunk) => {
      hash.update(chunk);
      size += chunk.length;
      if (!req.write(chunk)) {
        src.pause();
        req.once('drain', () => src.resume());
      }
    });
    src.on('end', () => {
      sha256 = hash.digest('hex');
      req.addTrailers({ [HASH_HEADER]: sha256 });
      req.end();
    });
  });
}

const keepAlive = new Agent({ keepAlive: true, maxSockets: 8 });

/** Files go in parallel: a CRIU image is dozens of small files and one large one, and each request costs a round trip. */
const PARALLEL_FILES = 6;

export async function sendImage(
  dir: string,
  baseUrl: string,
  imageId: string,
  onFile: (name: string, bytes: number) => void,
  opts: { secret?: string } = {},
): Promise<{ bytes: number; files: number }> {
  const auth: Record<string, string> = opts.secret ? { authorization: `Bearer ${transferToken(opts.secret, imageId)}` } : {};
  const pending = imageFiles(dir);
  const manifest: ManifestEntry[] = [];
  const sendOne = async (name: string): Promise<void> => {
    const res = await put(`${baseUrl}/images/${imageId}/files/${name}`, path.join(dir, name), auth);
    if (res.status >= 300) throw new Error(`sending ${name} to ${baseUrl}: HTTP ${res.status} ${res.body}`);
    manifest.push({ name, size: res.size, sha256: res.sha256 });
    onFile(name, res.size);
  };
  await Promise.all(
    Array.from({ length: Math.min(PARALLEL_FILES, pending.length) }, async () => {
      for (let name = pending.shift(); name; name = pending.shift()) await sendOne(name);
    }),
  );
  const res = await fetch(`${baseUrl}/images/${imageId}/commit`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth },
    body: JSON.stringify(manifest),
  });
  if (!res.ok) throw new Error(`committing image ${imageId} at ${baseUrl}: HTTP ${res.status} ${await res.text()}`);
  return { bytes: manifest.reduce((a, m) => a + m.size, 0), files: manifest.length };
}

function reply(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' });
  res.end(body);
}

/**
 * Request handler for the receiving side; images land in `<imagesDir>/<imageId>`. The failpoint
 * `<node>/receive-file` lets tests break the path: 'corrupt' flips a byte in transit, 'cut' drops the
 * connection mid-file, 'fail' is a disk error.
 */
export function imageReceiver(imagesDir: string, node: string, opts: { secret?: string } = {}) {
  const incoming = path.join(imagesDir, '.incoming');
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://agent');
    const parts = url.pathname.split('/').filter(Boolean);
    try {
      if (req.method === 'GET' && url.pathname === '/healthz') return reply(res, 200, 'ok');
      if (parts[0] !== 'images' || !parts[1] || !SAFE.test(parts[1])) return reply(res, 404, 'not found');
      const imageId = parts[1];
      if (opts.secret !== undefined && !authorized(opts.secret, imageId, req.headers.authorization)) {
        req.resume();
        return reply(res, 401, `image ${imageId}: the request carries no valid token for it (agents must share the transfer secret)`);
      }
      const staging = path.join(incoming, imageId);
      if (req.method === 'PUT' && parts[2] === 'files' && parts[3] && SAFE.test(parts[3]) && parts.length === 4) {
        const fault = await failpoint(`${node}/receive-file`);
        mkdirSync(staging, { recursive: true });
        const target = path.join(staging, parts[3]);
        const h = createHash('sha256');
        let first = true;
        req.on('data', (chunk: Buffer) => {
          if (first && fault === 'corrupt') chunk[0] ^= 0xff;
          if (first && fault === 'cut') req.socket.destroy();
          first = false;
          h.update(chunk);
        });
        await pipeline(req, createWriteStream(`${target}.part`));
        const actual = h.digest('hex');
        // The sender's SHA-256 comes as a trailer after the body (or, from simpler clients, as a header).
        const expected = String(req.trailers[HASH_HEADER] ?? req.headers[HASH_HEADER] ?? '');
        if (!/^[0-9a-f]{64}$/.test(expected)) {
          rmSync(`${target}.part`, { force: true });
          return reply(res, 400, `the file's SHA-256 is required in a ${HASH_HEADER} header or trailer`);
        }
        if (actual !== expected) {
          rmSync(`${target}.part`, { force: true });
          return reply(res, 422, `checksum mismatch for ${parts[3]}: expected ${expected}, got ${actual}`);
        }
        renameSync(`${target}.part`, target);
        writeFileSync(`${target}.sha256`, actual);
        return reply(res, 201, 'stored');
      }
      if (req.method === 'POST' && parts[2] === 'commit' && parts.length === 3) {
        const final = path.join(imagesDir, imageId);
        if (existsSync(path.join(final, COMPLETE_MARK))) return reply(res, 200, 'already complete');
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const manifest = JSON.parse(Buffer.concat(chunks).toString()) as ManifestEntry[];
        for (const m of manifest) {
          const f = path.join(staging, m.name);
          if (!SAFE.test(m.name) || !existsSync(f)) return reply(res, 422, `image ${imageId} lacks ${m.name}`);
          if (statSync(f).size !== m.size || readFileSync(`${f}.sha256`, 'utf8') !== m.sha256) return reply(res, 422, `image ${imageId}: ${m.name} does not match the manifest`);
          rmSync(`${f}.sha256`);
        }
        rmSync(final, { recursive: true, force: true });
        renameSync(staging, final);
        writeFileSync(path.join(final, COMPLETE_MARK), JSON.stringify({ receivedAt: Date.now(), files: manifest.length }));
        return reply(res, 201, 'complete');
      }
      return reply(res, 404, 'not found');
    } catch (err) {
      return reply(res, 500, (err as Error).message);
    }
  };
}
