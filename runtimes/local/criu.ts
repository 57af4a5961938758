/**
 * CRIU as the local runtime runs it: a dump or restore that outlives its agent, the earlier attempt's CRIU
 * awaited, a failpoint that holds a dump with the process frozen, the figures from --display-stats, and
 * what this node's CRIU and kernel allow.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Context } from '@temporalio/activity';
import type { Mechanism } from '../types';
import { externalPause } from '../../lib/failpoints';
import { isAlive } from './proc';

const run = promisify(execFile);

/**
 * Runs CRIU in `cwd` as its own process group, its output in a file rather than a pipe: CRIU must be able
 * to finish even if this agent dies while it runs (a pipe would break under it, and a dump abandoned
 * halfway can leave the process's sockets in repair mode). `onStart` learns its pid.
 */
export async function criu(criuBin: string, args: string[], cwd: string, onStart?: (pid: number) => void): Promise<{ output: string; ms: number }> {
  const t0 = performance.now();
  const outFile = path.join(cwd, `criu-${args[0]}-${process.pid}-${Date.now()}.out`);
  const fd = openSync(outFile, 'w');
  // A large image takes seconds; heartbeats tell Temporal the agent is alive (a dead one is noticed by their absence).
  const beat = setInterval(() => Context.current().heartbeat({ criu: args[0] }), 1000);
  try {
    const child = spawn(criuBin, args, { cwd, stdio: ['ignore', fd, fd], detached: true });
    closeSync(fd);
    if (child.pid) onStart?.(child.pid);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c, signal) => resolve(signal ? -1 : c));
    });
    const output = readFileSync(outFile, 'utf8');
    if (code !== 0) {
      const logName = args[args.indexOf('-o') + 1];
      const logTail = logName && existsSync(path.join(cwd, logName)) ? readFileSync(path.join(cwd, logName), 'utf8').split('\n').filter((l) => /Error|error/.test(l)).slice(-8).join('\n') : '';
      throw new Error(`criu ${args[0]} failed (exit ${code}): ${output.trim()}\n${logTail}`);
    }
    return { output, ms: performance.now() - t0 };
  } finally {
    clearInterval(beat);
    rmSync(outFile, { force: true });
  }
}

/** A CRIU started by an earlier attempt of this activity (its agent died) must finish before the image is redone. */
export async function earlierCriu(pidFile: string): Promise<void> {
  let pid: number;
  let start: number;
  try {
    [pid, start] = readFileSync(pidFile, 'utf8').trim().split(' ').map(Number);
  } catch {
    return;
  }
  const until = Date.now() + 120_000;
  while (isAlive(pid, start)) {
    if (Date.now() > until) throw new Error(`criu (pid ${pid}) of an earlier attempt is still running after 120 s`);
    Context.current().heartbeat({ waiting: `criu ${pid}` });
    await sleep(100);
  }
}

/** A CRIU action script that holds the dump, the process still frozen, while the failpoint `name` is armed. */
export function holdDumpScript(dataDir: string, name: string): string | null {
  const pass = externalPause(name);
  if (!pass) return null;
  const script = path.join(dataDir, 'criu-dump-hold.sh');
  writeFileSync(script, `#!/bin/sh\n[ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] || exit 0\n${pass}\nexit 0\n`, { mode: 0o755 });
  return script;
}

/** Pages CRIU dumped, from --display-stats ("Pages written: N"). */
export function pagesWritten(output: string): number {
  const m = /Pages written:\s*(\d+)/i.exec(output);
  return m ? Number(m[1]) : 0;
}

/** CRIU prints "Frozen time: N us" with --display-stats; absent in some builds, then the dump time stands in. */
export function frozenMs(output: string, fallback: number): number {
  const m = /Frozen time:\s*([0-9.]+)\s*us/i.exec(output);
  return m ? Number(m[1]) / 1000 : fallback;
}

/** What this node's CRIU and kernel allow of the mechanisms, checked once per agent. */
export async function mechanismSupport(criuBin: string): Promise<{ unsupported: Partial<Record<Mechanism, string>>; dirtyTracking: string }> {
  const check = (feature: string) =>
    run(criuBin, ['check', '--feature', feature]).then(
      () => null,
      (err: { stdout?: string; stderr?: string; message: string }) => `${(err.stdout ?? '') + (err.stderr ?? '')}`.trim().split('\n').filter((l) => !/RLIMIT_NOFILE/.test(l)).pop() ?? err.message,
    );
  const [uffd, dirty] = await Promise.all([check('uffd-noncoop'), check('mem_dirty_track')]);
  const unsupported: Partial<Record<Mechanism, string>> = {};
  if (uffd) unsupported.lazy = `the kernel's userfaultfd is not usable by CRIU here (criu check --feature uffd-noncoop: ${uffd})`;
  return {
    unsupported,
    dirtyTracking: dirty ? `unavailable: criu check --feature mem_dirty_track: ${dirty} (the kernel lacks CONFIG_MEM_SOFT_DIRTY; criu pre-dump cannot run)` : 'available',
  };
}
