/**
 * Failpoints: named places in the workers where the fault tests and `ms2m chaos` make a process pause,
 * fail or corrupt what it handles, so that a crash or a cancellation lands exactly inside a phase instead
 * of wherever a timer happens to fire. A failpoint is armed by a file `<MS2M_HOME>/failpoints/<name>.json`;
 * unarmed, passing one costs a failed open(). Names are `<process>/<point>`, e.g. `node-a/checkpoint`,
 * `orchestrator/prepareReplay`, `node-b/replayUntil` or `node-b/receive-file`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Context } from '@temporalio/activity';
import { loadConfig } from './config';

export type FailpointAction =
  /** Hold until released (the hit file is removed) or `ms` pass; an activity keeps heartbeating and stays cancellable. */
  | 'pause'
  /** Throw a (retryable) error with `message`. */
  | 'fail'
  /** Left to the caller, which knows what corrupting or cutting means there (e.g. a file in transit). */
  | 'corrupt'
  | 'cut';

export interface FailpointSpec {
  action: FailpointAction;
  /** How many passes trigger it (default 1); afterwards it disarms itself. */
  times?: number;
  ms?: number;
  message?: string;
}

const fileName = (name: string) => name.replace(/\//g, '~');

function dir(home: string): string {
  return path.join(home, 'failpoints');
}

/** Arms a failpoint for the workers that share `home`. */
export function armFailpoint(home: string, name: string, spec: FailpointSpec): void {
  mkdirSync(dir(home), { recursive: true });
  rmSync(path.join(dir(home), `${fileName(name)}.hit`), { force: true });
  writeFileSync(path.join(dir(home), `${fileName(name)}.json`), JSON.stringify(spec));
}

/** When the failpoint was last hit (epoch ms), or null. */
export function failpointHit(home: string, name: string): number | null {
  try {
    return Number(readFileSync(path.join(dir(home), `${fileName(name)}.hit`), 'utf8'));
  } catch {
    return null;
  }
}

/** Waits until a worker passes the armed failpoint. */
export async function waitForFailpoint(home: string, name: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (failpointHit(home, name) === null) {
    if (Date.now() > until) throw new Error(`failpoint ${name} was not reached within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Lets a paused worker go on. */
export function releaseFailpoint(home: string, name: string): void {
  rmSync(path.join(dir(home), `${fileName(name)}.hit`), { force: true });
  rmSync(path.join(dir(home), `${fileName(name)}.json`), { force: true });
}

export function disarmAllFailpoints(home: string): void {
  if (!existsSync(dir(home))) return;
  for (const f of readdirSync(dir(home))) rmSync(path.join(dir(home), f), { force: true });
}

function armed(file: string): FailpointSpec | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as FailpointSpec;
  } catch {
    return null;
  }
}

function consume(home: string, name: string): FailpointSpec | null {
  const file = path.join(dir(home), `${fileName(name)}.json`);
  const spec = armed(file);
  if (!spec) return null;
  const left = (spec.times ?? 1) - 1;
  if (left < 0) return null;
  // A spent pause keeps its file until released: a retry of the same activity then passes instead of pausing again.
  if (left > 0 || spec.action === 'pause') writeFileSync(file, JSON.stringify({ ...spec, times: left }));
  else rmSync(file, { force: true });
  writeFileSync(path.join(dir(home), `${fileName(name)}.hit`), String(Date.now()));
  return spec;
}

/**
 * A failpoint held by another program, such as a CRIU action script: if `name` is armed to pause, its pass
 * is counted and the shell lines that hit it (at the moment the program runs them) and wait for its
 * release are returned; otherwise null.
 */
export function externalPause(name: string, home = loadConfig().home): string | null {
  const file = path.join(dir(home), `${fileName(name)}.json`);
  const spec = armed(file);
  const left = (spec?.times ?? 1) - 1;
  if (!spec || left < 0 || spec.action !== 'pause') return null;
  writeFileSync(file, JSON.stringify({ ...spec, times: left }));
  const hit = path.join(dir(home), `${fileName(name)}.hit`);
  const ticks = Math.ceil((spec.ms ?? 120_000) / 50);
  return `date +%s%3N > '${hit}'; n=0; while [ -e '${hit}' ] && [ $n -lt ${ticks} ]; do sleep 0.05; n=$((n+1)); done; rm -f '${file}'`;
}

function activityContext(): Context | null {
  try {
    return Context.current();
  } catch {
    return null;
  }
}

/**
 * Passes the failpoint `name`. Returns the action when it is one the caller implements ('corrupt',
 * 'cut'); pauses or throws itself otherwise.
 */
export async function failpoint(name: string, home = loadConfig().home): Promise<FailpointAction | null> {
  const spec = consume(home, name);
  if (!spec) return null;
  if (spec.action === 'fail') throw new Error(spec.message ?? `injected fault at ${name}`);
  if (spec.action !== 'pause') return spec.action;
  const ctx = activityContext();
  const until = Date.now() + (spec.ms ?? 120_000);
  while (failpointHit(home, name) !== null && Date.now() < until) {
    // Heartbeats let a cancellation reach a paused regular activity; a local one is cancelled through its context.
    if (ctx && !ctx.info.isLocal) ctx.heartbeat({ failpoint: name });
    if (ctx) await Promise.race([ctx.sleep(200), ctx.cancelled]);
    else await sleep(200);
  }
  releaseFailpoint(home, name);
  return null;
}

/** Every activity of a worker gets a failpoint `<scope>/<activity name>` at its start. */
export function withFailpoints<T extends object>(scope: string, activities: T): T {
  const home = loadConfig().home;
  const wrapped: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] =
      typeof fn === 'function'
        ? async (...args: unknown[]) => {
            await failpoint(`${scope}/${name}`, home);
            return (fn as (...a: unknown[]) => unknown)(...args);
          }
        : fn;
  }
  return wrapped as T;
}
