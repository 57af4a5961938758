/**
 * How a started instance ended, as its node agent sees it, and the end of its log. The agent is the parent
 * of `unshare --fork`, which exits with the status of its child, the instance (the namespace's init); so
 * while the agent that started an instance lives, the 'exit' of its child is the instance's exit.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { InstanceExit } from '../types';

/** Enough for the last lines of a log with long lines (stack traces), without reading a large log whole. */
const TAIL_BYTES = 16 * 1024;

/** The last `n` lines of a file; none if it is missing or empty. */
export function tailLines(file: string, n: number): string[] {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return [];
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - TAIL_BYTES);
    const buf = Buffer.alloc(size - start);
    readSync(fd, buf, 0, buf.length, start);
    const lines = buf.toString('utf8').split('\n');
    if (start > 0) lines.shift(); // cut mid-line
    while (lines.length && lines[lines.length - 1].trim() === '') lines.pop();
    return lines.slice(-n);
  } finally {
    closeSync(fd);
  }
}

/**
 * util-linux's unshare passes a child's death by signal on by killing itself with that signal, which
 * cannot work for SIGKILL (nor SIGSTOP): it then prints one of these and exits with 1. An instance is
 * its namespace's init, and an init ignores every signal it has no handler for except SIGKILL from
 * outside, so a signal death is almost always SIGKILL (kill -9, the OOM killer) and arrives this way.
 */
const UNSHARE_SIGNAL_LOST = /^unshare: (sigprocmask unblock failed|child exit failed)/;

export function exitOf(code: number | null, signal: NodeJS.Signals | null, logTail: string[]): InstanceExit {
  const at = Date.now();
  if (code === 1 && UNSHARE_SIGNAL_LOST.test(logTail[logTail.length - 1] ?? '')) return { code: null, signal: 'SIGKILL', at };
  return { code, signal, at };
}

/** Resolves when `unshare` exits (or could not be spawned, as code 127 like a shell's "not found"). */
export function watchExit(child: ChildProcess, logPath: string): Promise<InstanceExit> {
  return new Promise((resolve) => {
    child.once('error', () => resolve({ code: 127, signal: null, at: Date.now() }));
    child.once('exit', (code, signal) => resolve(exitOf(code, signal, tailLines(logPath, 1))));
  });
}
