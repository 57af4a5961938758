/**
 * The target side of the `lazy` mechanism (post-copy): CRIU's lazy-pages daemon beside a restore run with
 * `--lazy-pages`. The restore fills only the pages it needs itself; the copy then runs, and the daemon
 * fills every other page over userfaultfd, on a fault first and in the background otherwise, from the
 * source node's page server (./lazy-page-server) or, when the pages already came with the image (the
 * `stream` mechanism), from the image here. It exits once every page is in.
 *
 * The daemon runs under a small shell that outlives this agent and records how it ended. If it fails, the
 * shell kills the copy at once: once the daemon is gone, a page it never filled would read as zeros, and
 * a copy must never run, let alone take over, on memory that is not its own.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive, procStat } from './proc';
import { criuTlsArgs, type TlsFiles } from './pki';

const SOCKET = 'lazy-pages.socket';
const files = (dir: string, instanceId: string) => {
  const base = path.join(dir, `lazy-${instanceId}`);
  return { log: `${base}.log`, exit: `${base}.exit`, started: `${base}.started`, copyPid: `${base}.copy.pid`, daemonPid: `${base}.daemon.pid` };
};

/** The shell around the daemon: $1 criu, $2 the exit file, $3 the copy's pid file, then criu's arguments. */
const WRAPPER = `criu=$1 exitf=$2 copypid=$3; shift 3
"$criu" "$@"; rc=$?
echo "$rc $(date +%s%3N)" > "$exitf.tmp" && mv "$exitf.tmp" "$exitf"
if [ "$rc" != 0 ] && [ -s "$copypid" ]; then kill -9 "$(cat "$copypid")" 2>/dev/null; fi
exit "$rc"`;

/** Ends a daemon of an earlier attempt: its restore never happened or failed, and it would wait forever. */
export function stopLazyDaemon(dir: string, instanceId: string): void {
  const f = files(dir, instanceId);
  try {
    const [pid, start] = readFileSync(f.daemonPid, 'utf8').trim().split(' ').map(Number);
    if (isAlive(pid, start)) process.kill(-pid, 'SIGKILL');
  } catch {
    // none recorded, or gone
  }
  for (const p of [f.daemonPid, f.exit, f.copyPid, path.join(dir, SOCKET)]) rmSync(p, { force: true });
}

/**
 * Starts the daemon for a restore of the image in `dir` as `instanceId`, and returns once it listens
 * for the restore. `pageSource` (host:port) is the source node's page server; without it the daemon
 * reads the pages from the image here.
 */
export async function startLazyDaemon(o: { criu: string; dir: string; instanceId: string; pageSource?: string; tls: TlsFiles }): Promise<void> {
  stopLazyDaemon(o.dir, o.instanceId);
  const f = files(o.dir, o.instanceId);
  const remote = o.pageSource ? remoteArgs(o.pageSource, o.tls) : [];
  const child = spawn('sh', ['-c', WRAPPER, 'ms2m-lazy-pages', o.criu, f.exit, f.copyPid, 'lazy-pages', '-D', o.dir, '-W', o.dir, ...remote, '-o', path.basename(f.log), '-v2'], {
    cwd: o.dir,
    stdio: 'ignore',
    detached: true,
  });
  child.unref();
  writeFileSync(f.daemonPid, `${child.pid} ${procStat(child.pid!)?.startTime ?? 0}`);
  writeFileSync(f.started, String(Date.now()));
  for (const until = Date.now() + 10_000; !existsSync(path.join(o.dir, SOCKET)); await sleep(5)) {
    if (existsSync(f.exit)) throw new Error(`criu lazy-pages ended before the restore: ${logTail(f.log)}`);
    if (Date.now() > until) throw new Error(`criu lazy-pages did not listen within 10 s: ${logTail(f.log)}`);
  }
}

function remoteArgs(pageSource: string, tls: TlsFiles): string[] {
  const m = /^(.+):(\d+)$/.exec(pageSource);
  if (!m) throw new Error(`page source "${pageSource}" is not host:port`);
  return ['--page-server', '--address', m[1], '--port', m[2], ...criuTlsArgs(tls)];
}

/** The restored copy's pid, for the daemon's shell to kill if the daemon fails. */
export function recordLazyCopy(dir: string, instanceId: string, pid: number): void {
  writeFileSync(files(dir, instanceId).copyPid, String(pid));
}

function logTail(file: string): string {
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => /Error|error/.test(l) && !/RLIMIT_NOFILE/.test(l)) : [];
  return lines.slice(-3).join(' | ') || 'no error in its log';
}

export type LazyOutcome = { ok: true; ms: number } | { ok: false; why: string };

/** How the daemon of `instanceId` ended, or null while it runs. */
export function lazyOutcome(dir: string, instanceId: string): LazyOutcome | null {
  const f = files(dir, instanceId);
  if (!existsSync(f.exit)) {
    let alive = false;
    try {
      const [pid, start] = readFileSync(f.daemonPid, 'utf8').trim().split(' ').map(Number);
      alive = isAlive(pid, start);
    } catch {
      // no daemon recorded
    }
    // Checked again: it may have written its exit between the two looks.
    if (alive || existsSync(f.exit)) return existsSync(f.exit) ? lazyOutcome(dir, instanceId) : null;
    return { ok: false, why: `criu lazy-pages is gone without an exit status (killed?); ${logTail(f.log)}` };
  }
  const [rc, endedAt] = readFileSync(f.exit, 'utf8').trim().split(' ').map(Number);
  if (rc !== 0) return { ok: false, why: `criu lazy-pages failed (exit ${rc}): ${logTail(f.log)}` };
  const started = existsSync(f.started) ? Number(readFileSync(f.started, 'utf8')) : statSync(f.exit).mtimeMs;
  return { ok: true, ms: Math.max(0, endedAt - started) };
}
