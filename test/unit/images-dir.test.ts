import { existsSync, lstatSync, mkdirSync, mkdtempSync, readlinkSync, realpathSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { releaseImagesDir, setUpImagesDir } from '../../runtimes/local/images-dir';

const dataDir = () => mkdtempSync(path.join(os.tmpdir(), 'ms2m-images-'));

describe("where a local node keeps its images", () => {
  it('in memory by default: <dataDir>/images links to a folder of its own under /dev/shm, released with the home', () => {
    const d = dataDir();
    const link = setUpImagesDir(d, undefined);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    const target = readlinkSync(link);
    expect(target).toMatch(/^\/dev\/shm\/ms2m\/[0-9a-f]{16}\/images$/);
    // Stable across restarts of its agent.
    expect(readlinkSync(setUpImagesDir(d, undefined))).toBe(target);
    writeFileSync(path.join(link, 'pages-1.img'), 'x');
    releaseImagesDir(d);
    expect(existsSync(path.dirname(target))).toBe(false);
  });

  it('on disk when asked, and never deletes a folder the operator named', () => {
    const d = dataDir();
    const disk = setUpImagesDir(d, 'disk');
    expect(lstatSync(disk).isDirectory()).toBe(true);
    const mine = mkdtempSync(path.join(os.tmpdir(), 'ms2m-operator-'));
    const d2 = dataDir();
    const link = setUpImagesDir(d2, mine);
    expect(realpathSync(link)).toBe(realpathSync(mine));
    releaseImagesDir(d2);
    expect(existsSync(mine)).toBe(true);
  });

  it('keeps a real images folder that holds an image (a dead source\'s kept state) where it is', () => {
    const d = dataDir();
    mkdirSync(path.join(d, 'images', 'migrate-x'), { recursive: true });
    const link = setUpImagesDir(d, undefined);
    expect(lstatSync(link).isSymbolicLink()).toBe(false);
    expect(existsSync(path.join(link, 'migrate-x'))).toBe(true);
  });
});
