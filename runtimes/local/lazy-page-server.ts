/**
 * Serves the pages of a checkpoint image to the target's `criu lazy-pages` daemon, which fetches them as
 * the restored copy touches them (post-copy). The pages come from the source node's image files, not from
 * the source process: the source keeps running and changing its memory, and a source that dies during
 * the lazy phase takes no page with it.
 *
 * CRIU's own `criu page-server --lazy-pages` cannot serve from image files here (it fails on the first
 * request with `page-pipe: tee: Operation not permitted`), so this speaks the protocol of
 * criu/page-xfer.c itself: 32-byte requests `{u32 cmd, u64 nr_pages, u64 vaddr, u64 dst_id}` (dst_id is
 * the task's pid in the dump), PS_IOV_GET answered by a header `PS_IOV_ADD_F | PE_PRESENT << 16` with the
 * pages that follow it (possibly fewer than asked), PS_IOV_CLOSE by a 32-bit status. Over TLS with client
 * certificates from the cluster's CA: CRIU's daemon is a gnutls client (`--tls`).
 */
import { openSync, closeSync, readSync } from 'node:fs';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createServer, type TLSSocket } from 'node:tls';
import { locatePages, pagesFile, PAGE_SIZE, PE_PRESENT, readPagemaps, type Pagemap } from './criu-pagemap';
import type { TlsFiles } from './pki';
import { failpoint } from '../../lib/failpoints';

const IOV_SIZE = 32;
const PS_IOV_GET = 7;
const PS_IOV_ADD_F = 6;
const PS_IOV_CLOSE = 0x1023;
const PS_IOV_FORCE_CLOSE = 0x1024;
const PS_CMD_MASK = 0xffff;

export interface LazyPageStats {
  requests: number;
  pages: number;
  connections: number;
}

export interface LazyPageServer {
  port: number;
  stats: LazyPageStats;
  close(): void;
}

export function encodeIov(cmd: number, nrPages: number, vaddr: bigint, dstId: bigint): Buffer {
  const b = Buffer.alloc(IOV_SIZE);
  b.writeUInt32LE(cmd, 0);
  b.writeBigUInt64LE(BigInt(nrPages), 8);
  b.writeBigUInt64LE(vaddr, 16);
  b.writeBigUInt64LE(dstId, 24);
  return b;
}

export function decodeIov(b: Buffer): { cmd: number; nrPages: number; vaddr: bigint; dstId: bigint } {
  return { cmd: b.readUInt32LE(0), nrPages: Number(b.readBigUInt64LE(8)), vaddr: b.readBigUInt64LE(16), dstId: b.readBigUInt64LE(24) };
}

function writeFlushed(sock: TLSSocket, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => sock.write(data, (err) => (err ? reject(err) : resolve())));
}

export async function serveLazyPages(
  imageDir: string,
  o: { node: string; host: string; tls: TlsFiles; log?: (line: string) => void },
): Promise<LazyPageServer> {
  const maps = new Map<bigint, { pm: Pagemap; fd: number }>();
  for (const pm of readPagemaps(imageDir)) maps.set(BigInt(pm.pid), { pm, fd: openSync(path.join(imageDir, pagesFile(pm)), 'r') });
  const stats: LazyPageStats = { requests: 0, pages: 0, connections: 0 };
  const log = o.log ?? (() => undefined);
  const open = new Set<TLSSocket>();
  const server = createServer({ key: o.tls.key, cert: o.tls.cert, ca: o.tls.ca, requestCert: true, rejectUnauthorized: true }, (sock) => {
    stats.connections++;
    open.add(sock);
    sock.once('close', () => open.delete(sock));
    void serveConnection(sock).catch((err: Error) => {
      log(`lazy pages of ${path.basename(imageDir)}: ${err.message}`);
      sock.destroy();
    });
  });
  server.on('tlsClientError', (err) => log(`lazy pages of ${path.basename(imageDir)}: refused a connection: ${err.message}`));

  async function serveConnection(sock: TLSSocket): Promise<void> {
    sock.setNoDelay(true);
    let pending: Buffer = Buffer.alloc(0);
    let waiting: (() => void) | null = null;
    let ended = false;
    sock.on('data', (d: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, d]) : d;
      waiting?.();
    });
    sock.on('close', () => {
      ended = true;
      waiting?.();
    });
    const nextIov = async (): Promise<Buffer | null> => {
      while (pending.length < IOV_SIZE) {
        if (ended) return null;
        await new Promise<void>((resolve) => (waiting = resolve));
        waiting = null;
      }
      const iov = pending.subarray(0, IOV_SIZE);
      pending = pending.subarray(IOV_SIZE);
      return iov;
    };
    // Fault injection: hold the lazy phase at its first request (a source or its agent is killed meanwhile).
    let first = true;
    // Requests are answered in order, one at a time: the daemon reads the answers in the order it asked.
    for (let raw = await nextIov(); raw; raw = await nextIov()) {
      if (first) await failpoint(`${o.node}/serve-lazy-pages`);
      first = false;
      const req = decodeIov(raw);
      const cmd = req.cmd & PS_CMD_MASK;
      if (cmd === PS_IOV_CLOSE || cmd === PS_IOV_FORCE_CLOSE) {
        sock.end(Buffer.alloc(4));
        return;
      }
      if (cmd !== PS_IOV_GET) throw new Error(`unexpected page-server command ${req.cmd}`);
      const task = maps.get(req.dstId);
      const at = task ? locatePages(task.pm, req.vaddr, req.nrPages) : null;
      if (!task || !at) throw new Error(`no pages of task ${req.dstId} at 0x${req.vaddr.toString(16)} in the image`);
      // The read is synchronous: the image is in the page cache (written moments ago), and a thread-pool
      // hop would cost more than the copy on a path where the daemon waits for every answer.
      const data = Buffer.allocUnsafe(at.nrPages * PAGE_SIZE);
      const got = readSync(task.fd, data, 0, data.length, at.offset);
      if (got !== data.length) throw new Error(`the pages file of task ${req.dstId} ends early at offset ${at.offset + got}`);
      stats.requests++;
      stats.pages += at.nrPages;
      // The header must travel in a TLS record of its own: the daemon reads exactly its 32 bytes, then
      // waits on the socket for the pages, and gnutls would keep the rest of a shared record in its
      // buffer where that wait never sees it. Each write, once flushed, ends its records.
      await writeFlushed(sock, encodeIov(PS_IOV_ADD_F | (PE_PRESENT << 16), at.nrPages, req.vaddr, req.dstId));
      await writeFlushed(sock, data);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, o.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    stats,
    close() {
      server.close();
      for (const s of open) s.destroy();
      for (const { fd } of maps.values()) closeSync(fd);
      maps.clear();
    },
  };
}
