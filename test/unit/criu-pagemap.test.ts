/**
 * CRIU's pagemap images as ms2m reads them (runtimes/local/criu-pagemap.ts): offsets in the pages file,
 * the pages a lazy restore leaves behind, and where a requested page is. The images are written here the
 * way CRIU writes them (two magics, then length-prefixed protobuf messages).
 */
import { describe, expect, it } from 'vitest';
import { eagerExtents, lazyBytes, locatePages, parsePagemap, PAGE_SIZE, PE_LAZY, PE_PARENT, PE_PRESENT } from '../../runtimes/local/criu-pagemap';

function varint(n: bigint): number[] {
  const out: number[] = [];
  do {
    let b = Number(n & 0x7fn);
    n >>= 7n;
    if (n > 0n) b |= 0x80;
    out.push(b);
  } while (n > 0n);
  return out;
}
const field = (no: number, v: bigint | number) => [...varint(BigInt(no << 3)), ...varint(BigInt(v))];
function message(fields: number[]): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(fields.length);
  return Buffer.concat([len, Buffer.from(fields)]);
}
function image(pagesId: number, entries: Array<{ vaddr: bigint; nr: number; flags?: number; compatOnly?: boolean }>): Buffer {
  const magic = Buffer.alloc(8);
  magic.writeUInt32LE(0x54564319, 0);
  magic.writeUInt32LE(0x56084025, 4);
  return Buffer.concat([
    magic,
    message(field(1, pagesId)),
    ...entries.map((e) => message([...field(1, e.vaddr), ...field(2, e.compatOnly ? e.nr : 0), ...(e.flags === undefined ? [] : field(4, e.flags)), ...(e.compatOnly ? [] : field(5, e.nr))])),
  ]);
}

const BASE = 0x7f0000000000n;
const at = (page: number) => BASE + BigInt(page * PAGE_SIZE);

describe("CRIU's pagemap", () => {
  const pm = parsePagemap(
    image(65537, [
      { vaddr: at(0), nr: 2, flags: PE_PRESENT }, // eager (a stack, say)
      { vaddr: at(10), nr: 3, flags: PE_PRESENT | PE_LAZY },
      { vaddr: at(20), nr: 1, flags: PE_PARENT }, // in a parent image: no room in this pages file
      { vaddr: at(30), nr: 4, flags: PE_PRESENT }, // eager
      { vaddr: at(40), nr: 5, flags: PE_PRESENT | PE_LAZY },
    ]),
    1,
  );

  it('gives every present entry its offset in the pages file, in entry order', () => {
    expect(pm.pagesId).toBe(65537);
    expect(pm.entries.map((e) => e.offset / PAGE_SIZE)).toEqual([0, 2, -1 / PAGE_SIZE, 5, 9]);
  });

  it('sends eagerly only what the restore reads itself, merging adjacent ranges; the rest is left to the lazy phase', () => {
    expect(eagerExtents(pm)).toEqual([
      { offset: 0, length: 2 * PAGE_SIZE },
      { offset: 5 * PAGE_SIZE, length: 4 * PAGE_SIZE },
    ]);
    expect(lazyBytes(pm)).toBe(8 * PAGE_SIZE);
  });

  it('finds a requested page and how many run on from it in one entry; not a page it does not hold', () => {
    expect(locatePages(pm, at(11), 10)).toEqual({ offset: 3 * PAGE_SIZE, nrPages: 2 });
    expect(locatePages(pm, at(40), 2)).toEqual({ offset: 9 * PAGE_SIZE, nrPages: 2 });
    expect(locatePages(pm, at(13), 1)).toBeNull(); // past the entry
    expect(locatePages(pm, at(20), 1)).toBeNull(); // in the parent
    expect(locatePages(pm, at(11) + 8n, 1)).toBeNull(); // not page-aligned
    expect(locatePages(pm, BASE - BigInt(PAGE_SIZE), 1)).toBeNull();
  });

  it('reads images of older CRIUs (the page count only in compat_nr_pages, no flags)', () => {
    const old = parsePagemap(image(2, [{ vaddr: at(0), nr: 3, compatOnly: true }, { vaddr: at(8), nr: 1, compatOnly: true }]), 7);
    expect(old.entries.map((e) => [e.nrPages, e.flags, e.offset])).toEqual([
      [3, PE_PRESENT, 0],
      [1, PE_PRESENT, 3 * PAGE_SIZE],
    ]);
  });

  it('refuses what is not a pagemap image', () => {
    expect(() => parsePagemap(Buffer.from('not an image at all'), 1)).toThrow(/not a CRIU pagemap image/);
    expect(() => parsePagemap(image(1, [{ vaddr: at(0), nr: 1, flags: PE_PRESENT }]).subarray(0, 20), 1)).toThrow(/truncated/);
  });
});
