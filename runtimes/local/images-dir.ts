/**
 * Where a local node keeps its checkpoint images. They are scratch data for the length of a migration,
 * as large as the state, written by CRIU, sent once and read by a restore, and the disk is what bounds
 * all of that (measured here: 1 GiB copied and hashed at 222 MB/s on the VM's ext4, 781 MB/s on tmpfs).
 * So by default they live in memory, under /dev/shm, and `<dataDir>/images` is a link to that folder:
 * every path the agent and CRIU use stays the same. MS2M_IMAGES_DIR names another folder (a disk, to keep
 * images across a reboot, or where memory is short); "disk" keeps them in the data directory.
 *
 * The cost is memory: an image takes as much as the state it holds, on both nodes while it moves, and an
 * image kept because its source died (stateKeptIn) is lost with a reboot.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import * as path from 'node:path';

const SHM = '/dev/shm';

/** The folder that holds the images of the node whose data directory is `dataDir`, made if needed. */
export function setUpImagesDir(dataDir: string, setting = process.env.MS2M_IMAGES_DIR): string {
  const link = path.join(dataDir, 'images');
  const wanted = setting === 'disk' ? null : setting ? path.resolve(setting) : existsSync(SHM) ? path.join(SHM, 'ms2m', key(dataDir), 'images') : null;
  const current = existsSync(link) || isLink(link) ? (isLink(link) ? readlinkSync(link) : link) : null;
  if (current === (wanted ?? link)) {
    mkdirSync(current, { recursive: true });
    return link;
  }
  // A real folder that holds images (one kept from a dead source, say) stays where it is.
  if (current === link && readdirSync(link).some((f) => f !== '.incoming')) return link;
  rmSync(link, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  if (wanted) {
    mkdirSync(wanted, { recursive: true });
    symlinkSync(wanted, link);
  } else {
    mkdirSync(link, { recursive: true });
  }
  return link;
}

/** Frees what the node's images take outside its data directory (the cluster's home is going away). */
export function releaseImagesDir(dataDir: string): void {
  const link = path.join(dataDir, 'images');
  // Only the folders made here: a folder named by MS2M_IMAGES_DIR is the operator's.
  if (isLink(link) && readlinkSync(link).startsWith(`${SHM}/ms2m/`)) rmSync(path.dirname(readlinkSync(link)), { recursive: true, force: true });
}

function isLink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** One folder per data directory, stable across restarts of its agent. */
const key = (dataDir: string): string => createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 16);
