/**
 * What this machine allows, measured in the same run as the migrations, so that every figure of the
 * benchmark can be read as a ratio to it:
 * - a bare `criu dump` and `criu restore` of a process holding the same state, with no broker
 *   connection, agent or workflow around it, and the time that dump kept the process frozen;
 * - a copy of that very image at its best: each file read once in 4 MiB chunks, hashed with SHA-256 and
 *   written once, in a tight loop, on the disk the agents keep their images on. Any transfer of the image
 *   (and the lazy phase, which moves the pages left behind) must at least do this;
 * - one RabbitMQ round trip (publish to a queue, get it back), the unit of every control command.
 * Local runtime only: on Kubernetes the kubelet, not ms2m, runs CRIU.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as amqp from 'amqplib';
import { loadConfig } from '../lib/config';

export interface Limits {
  stateBytes: number;
  /** The bare process's image. */
  imageBytes: number;
  dumpMs: number;
  /**
   * How long the bare dump kept the process frozen ("Frozen time" of criu --display-stats). Absent in
   * the limits of runs from before it was recorded, and when criu does not print it.
   */
  dumpFrozenMs?: number;
  restoreMs: number;
  /** Reading, hashing and writing the image once, file to file. */
  copyHashMs: number;
  copyHashMBps: number;
  /** Median of `RTT_SAMPLES` publish → get round trips on one channel. */
  rabbitRttMs: number;
}

const RTT_SAMPLES = 200;
/** The transfer's own chunk (runtimes/shared/image-transfer.ts): large enough that each call's cost vanishes. */
const CHUNK = 4 * 1024 * 1024;

/**
 * `workDir` should be on the storage the node agents keep their images on (the bench passes the folder a
 * node's `images` link points to: memory by default, runtimes/local/images-dir.ts), so the bare dump and
 * the copy run where the migrations' do.
 */
export async function measureLimits(stateBytes: number, workDir: string): Promise<Limits> {
  const cfg = loadConfig();
  const dir = path.join(workDir, `limits-${stateBytes}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    const images = path.join(dir, 'images');
    const copy = path.join(dir, 'copy');
    mkdirSync(images);
    const pid = await startBareProcess(dir, stateBytes, cfg.projectRoot);
    const t0 = performance.now();
    // Without --leave-running: the process ends, and its copy is restored from the other directory.
    const dumpOutput = await run(cfg.criu, ['dump', '-t', String(pid), '-D', images, '-W', dir, '-o', 'dump.log', '--display-stats']);
    const dumpMs = performance.now() - t0;
    const dumpFrozenMs = frozenMs(dumpOutput);
    const imageBytes = dirBytes(images);
    const t1 = performance.now();
    await copyAndHash(images, copy);
    const copyHashMs = performance.now() - t1;
    const pidFile = path.join(dir, 'restored.pid');
    const t2 = performance.now();
    await run(cfg.criu, ['restore', '-D', copy, '-W', dir, '-d', '--pidfile', pidFile, '-o', 'restore.log']);
    const restoreMs = performance.now() - t2;
    killQuietly(Number(readFileSync(pidFile, 'utf8').trim()));
    return {
      stateBytes,
      imageBytes,
      dumpMs,
      ...(dumpFrozenMs !== undefined ? { dumpFrozenMs } : {}),
      restoreMs,
      copyHashMs,
      copyHashMBps: imageBytes / 1048576 / (copyHashMs / 1000),
      rabbitRttMs: await rabbitRoundTrip(cfg.amqpUrl),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * A process like the example's, holding `stateBytes` of the same ballast, alone in a PID namespace (as
 * the local runtime starts services, so CRIU can dump the tree) and writing to a file, not a pipe.
 */
async function startBareProcess(dir: string, stateBytes: number, projectRoot: string): Promise<number> {
  const footprint = path.join(projectRoot, 'dist', 'examples', 'footprint.js');
  const script = `globalThis.state = require(${JSON.stringify(footprint)}).ballast(${stateBytes}); console.log('ready'); setInterval(() => undefined, 1000);`;
  const logFile = path.join(dir, 'bare.log');
  const fd = openSync(logFile, 'a');
  const child = spawn('unshare', ['--pid', '--fork', '--', 'setsid', process.execPath, '-e', script], {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { PATH: process.env.PATH, UV_USE_IO_URING: '0' },
  });
  closeSync(fd);
  child.unref();
  for (let i = 0; i < 300; i++) {
    if (existsSync(logFile) && readFileSync(logFile, 'utf8').includes('ready')) {
      const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
      if (children) return Number(children.split(/\s+/)[0]);
    }
    await sleep(20);
  }
  throw new Error(`the bare process for the limits did not start; its output: ${readFileSync(logFile, 'utf8').slice(-500)}`);
}

/**
 * What a transfer of the image must at least do, done as cheaply as Node can: each file read once in 4 MiB
 * chunks into one buffer, hashed (one SHA-256 per file, as the transfer does) and written once, with no
 * stream machinery between the calls, so what is left is the disk and the hash.
 */
export async function copyAndHash(from: string, to: string): Promise<void> {
  mkdirSync(to, { recursive: true });
  const buf = Buffer.allocUnsafe(CHUNK);
  for (const name of readdirSync(from).sort()) {
    const hash = createHash('sha256');
    const src = await open(path.join(from, name), 'r');
    const dst = await open(path.join(to, name), 'w');
    try {
      for (;;) {
        const { bytesRead } = await src.read(buf, 0, CHUNK, null);
        if (bytesRead === 0) break;
        const chunk = buf.subarray(0, bytesRead);
        hash.update(chunk);
        await dst.write(chunk, 0, bytesRead);
      }
    } finally {
      await src.close();
      await dst.close();
    }
    hash.digest();
  }
}

/** criu --display-stats prints "Frozen time: N us". */
export function frozenMs(output: string): number | undefined {
  const m = /Frozen time:\s*([0-9.]+)\s*us/i.exec(output);
  return m ? Number(m[1]) / 1000 : undefined;
}

async function rabbitRoundTrip(url: string): Promise<number> {
  const conn = await amqp.connect(url, { noDelay: true });
  try {
    const ch = await conn.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true });
    const times: number[] = [];
    for (let i = 0; i < RTT_SAMPLES; i++) {
      const t = performance.now();
      ch.sendToQueue(queue, Buffer.from(String(i)));
      while (!(await ch.get(queue, { noAck: true })));
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)];
  } finally {
    await conn.close();
  }
}

/** Runs a command to its end and gives what it printed (stdout and stderr: criu prints its stats on either, by version). */
function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(`${out}${err}`) : reject(new Error(`${path.basename(cmd)} ${args[0]} failed (exit ${code}): ${err.trim().slice(-500)}`))));
  });
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
