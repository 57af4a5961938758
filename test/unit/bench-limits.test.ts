import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyAndHash, frozenMs } from '../../bench/limits';

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe("the machine's limits", () => {
  it('copies each file whole, over several 4 MiB chunks and none', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-limits-'));
    dirs.push(dir);
    const from = path.join(dir, 'images');
    fs.mkdirSync(from);
    // Past two chunks and not a multiple of one; a small file; an empty one.
    const files = { 'pages-1.img': randomBytes(9 * 2 ** 20 + 4097), 'core-1.img': randomBytes(1234), 'empty.img': Buffer.alloc(0) };
    for (const [name, data] of Object.entries(files)) fs.writeFileSync(path.join(from, name), data);
    await copyAndHash(from, path.join(dir, 'copy'));
    for (const [name, data] of Object.entries(files)) expect(fs.readFileSync(path.join(dir, 'copy', name)).equals(data)).toBe(true);
  });

  it("reads the bare dump's frozen time from criu's statistics", () => {
    const stats = 'Displaying dump stats:\nFreezing time: 46780 us\nFrozen time: 132315 us\nMemory dump time: 64963 us\nPages written: 4242\n';
    expect(frozenMs(stats)).toBeCloseTo(132.315);
    expect(frozenMs('Warn: no stats')).toBeUndefined();
  });
});
