/**
 * Reads CRIU's pagemap images: which pages of a dumped process are in its `pages-<id>.img`, at which
 * offset, and which of them a lazy restore may fetch later (CRIU marks pages of anonymous private
 * mappings PE_LAZY in every dump, lazy or not). The lazy transfer sends the other (eager) pages ahead and
 * serves the lazy ones on demand from the source's image; see docs/design/pre-copy-and-post-copy.md.
 *
 * Format (criu/image.c, images/pagemap.proto): two u32 magics, then entries, each a u32 length and a
 * protobuf message: first a `pagemap_head` (the id of the pages file), then one `pagemap_entry` per run
 * of pages. The pages file holds the pages of the entries flagged PE_PRESENT, in entry order.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

export const PAGE_SIZE = 4096;
const IMG_COMMON_MAGIC = 0x54564319;
const PAGEMAP_MAGIC = 0x56084025;
export const PE_PARENT = 1 << 0;
export const PE_LAZY = 1 << 1;
export const PE_PRESENT = 1 << 2;

export interface PagemapEntry {
  vaddr: bigint;
  nrPages: number;
  flags: number;
  /** Byte offset of the first page in the pages file; -1 when the entry has no pages there. */
  offset: number;
}

export interface Pagemap {
  /** The task's pid in the dump (the image's `pagemap-<pid>.img`). */
  pid: number;
  /** The pages file is `pages-<pagesId>.img`. */
  pagesId: number;
  entries: PagemapEntry[];
}

/** A byte range of a pages file. */
export interface Extent {
  offset: number;
  length: number;
}

/** Protobuf fields of one message: varints only (pagemap messages have nothing else). */
function varintFields(buf: Buffer, file: string): Map<number, bigint> {
  const fields = new Map<number, bigint>();
  let i = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (i >= buf.length) throw new Error(`${file}: truncated protobuf varint`);
      const b = buf[i++];
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    if ((key & 7) !== 0) throw new Error(`${file}: unexpected protobuf wire type ${key & 7} in a pagemap`);
    fields.set(key >>> 3, varint());
  }
  return fields;
}

export function parsePagemap(data: Buffer, pid: number, file = `pagemap-${pid}.img`): Pagemap {
  if (data.length < 8 || data.readUInt32LE(0) !== IMG_COMMON_MAGIC || data.readUInt32LE(4) !== PAGEMAP_MAGIC) {
    throw new Error(`${file} is not a CRIU pagemap image (bad magic)`);
  }
  const messages: Map<number, bigint>[] = [];
  for (let at = 8; at < data.length; ) {
    const len = data.readUInt32LE(at);
    if (at + 4 + len > data.length) throw new Error(`${file}: truncated entry at byte ${at}`);
    messages.push(varintFields(data.subarray(at + 4, at + 4 + len), file));
    at += 4 + len;
  }
  const head = messages.shift();
  if (!head?.has(1)) throw new Error(`${file}: no pagemap head`);
  let offset = 0;
  const entries = messages.map((m): PagemapEntry => {
    // nr_pages (5) superseded compat_nr_pages (2); old images have only the latter, and no flags.
    const nrPages = Number(m.get(5) ?? m.get(2) ?? 0n);
    const flags = m.has(4) ? Number(m.get(4)) : m.get(3) ? PE_PARENT : PE_PRESENT;
    const e: PagemapEntry = { vaddr: m.get(1) ?? 0n, nrPages, flags, offset: flags & PE_PRESENT ? offset : -1 };
    if (flags & PE_PRESENT) offset += nrPages * PAGE_SIZE;
    return e;
  });
  return { pid, pagesId: Number(head.get(1)), entries };
}

/** Every task's pagemap in an image directory. */
export function readPagemaps(dir: string): Pagemap[] {
  return readdirSync(dir)
    .map((f) => /^pagemap-(\d+)\.img$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => parsePagemap(readFileSync(path.join(dir, m[0])), Number(m[1]), m[0]));
}

export const pagesFile = (pm: Pick<Pagemap, 'pagesId'>): string => `pages-${pm.pagesId}.img`;

/** Ranges of the pages file a restore reads itself (present, not lazy), adjacent ones merged. */
export function eagerExtents(pm: Pagemap): Extent[] {
  const out: Extent[] = [];
  for (const e of pm.entries) {
    if (!(e.flags & PE_PRESENT) || e.flags & PE_LAZY || e.nrPages === 0) continue;
    const length = e.nrPages * PAGE_SIZE;
    const last = out[out.length - 1];
    if (last && last.offset + last.length === e.offset) last.length += length;
    else out.push({ offset: e.offset, length });
  }
  return out;
}

/** Bytes of the pages a lazy restore fetches on demand. */
export function lazyBytes(pm: Pagemap): number {
  return pm.entries.filter((e) => e.flags & PE_PRESENT && e.flags & PE_LAZY).reduce((a, e) => a + e.nrPages * PAGE_SIZE, 0);
}

/**
 * Where the pages starting at `vaddr` are in the pages file, and how many of the `nrPages` asked for run
 * on from there in one entry (a page server may answer a request with fewer pages than asked).
 */
export function locatePages(pm: Pagemap, vaddr: bigint, nrPages: number): { offset: number; nrPages: number } | null {
  // Entries are sorted by address: binary search for the last one starting at or below vaddr.
  let lo = 0;
  let hi = pm.entries.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (pm.entries[mid].vaddr <= vaddr) lo = mid;
    else hi = mid - 1;
  }
  const e = pm.entries[lo];
  if (!e || !(e.flags & PE_PRESENT) || vaddr < e.vaddr) return null;
  const index = Number((vaddr - e.vaddr) / BigInt(PAGE_SIZE));
  if ((vaddr - e.vaddr) % BigInt(PAGE_SIZE) !== 0n || index >= e.nrPages) return null;
  return { offset: e.offset + index * PAGE_SIZE, nrPages: Math.min(nrPages, e.nrPages - index) };
}
