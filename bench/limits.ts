/**
 * What this machine allows, measured in the same run as the migrations, so that every figure of the
 * benchmark can be read as a ratio to it:
 * - a bare `criu dump` and `criu restore` of a process holding the same state, with no broker
 *   connection, agent or workflow around it;
 * - a raw copy of that very image, file by file on the same disk, hashed with SHA-256 on the way: what
 *   any transfer of the image must at least do;
 * - one RabbitMQ round trip (publish to a queue, get it back), the unit of every control command.
 * Local runtime only: on Kubernetes the kubelet, not ms2m, runs CRIU.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import * as amqp from 'amqplib';
import { loadConfig } from '../lib/config';

export interface Limits {
  stateBytes: number;
  /** The bare process's image. */
  imageBytes: number;
  dumpMs: number;
  restoreMs: number;
  /** Copying and hashing the image once, file to file. */
  copyHashMs: number;
  copyHashMBps: number;
  /** Median of `RTT_SAMPLES` publish → get round trips on one channel. */
  rabbitRttMs: number;
}

const RTT_SAMPLES = 200;

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
    await run(cfg.criu, ['dump', '-t', String(pid), '-D', images, '-W', dir, '-o', 'dump.log']);
    const dumpMs = performance.now() - t0;
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

/** What a transfer of the image must at least do: read each file once, hash it (as the transfer does, one SHA-256 per file) and write it. */
async function copyAndHash(from: string, to: string): Promise<void> {
  mkdirSync(to, { recursive: true });
  for (const name of readdirSync(from).sort()) {
    const hash = createHash('sha256');
    const hashing = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done(null, chunk);
      },
    });
    await pipeline(createReadStream(path.join(from, name)), hashing, createWriteStream(path.join(to, name)));
    hash.digest();
  }
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

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(cmd)} ${args[0]} failed (exit ${code}): ${err.trim().slice(-500)}`))));
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
