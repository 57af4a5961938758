/**
 * `ms2m watch` and `ms2m migrate` as a person sees them: the compiled CLI run inside tmux (a real
 * pseudo-terminal) against this file's cluster, its screen read with `tmux capture-pane` while a
 * migration runs under load, checking that the view is redrawn in place (the same lines change, the
 * screen does not scroll) and that it shows the service, a bar per phase, the replay lag or the elapsed
 * time, and the end. And with stdout piped (not a terminal): plain lines, one per stage change.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployWorkload, runScenario, undeploy } from '../../cli/scenario';
import { loadConfig } from '../../lib/config';
import { Ms2mClient } from '../../sdk';
import type { ClusterHandle } from '../../runtimes/types';
import { startE2eCluster, stopE2eCluster, type E2eCluster } from './e2e-cluster';

const run = Date.now().toString(36);
const taskQueue = `ms2m-watch-${run}`;
const main = path.join(loadConfig().projectRoot, 'dist', 'cli', 'main.js');
/** A tmux server of this file's own, so no one else's sessions or settings take part. */
const SOCKET = path.join(os.tmpdir(), `ms2m-watch-${run}.tmux`);
const CAPTURE_FILE = '/tmp/watch-capture.txt';
const PHASE_ROW = /^ {2}(validate|prepare|checkpoint|transfer|restore|replay|fence|finalize) +[\u2588\u2591]{24}/;

/** tmux, installed with apt-get if missing (as infra/ scripts install what they need); why not, if it cannot be. */
function ensureTmux(): string | null {
  const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  if (has('tmux')) return null;
  if (!has('apt-get')) return 'tmux is not installed and this host has no apt-get: install tmux to run the terminal tests';
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'tmux'], { env, encoding: 'utf8' });
  let r = install();
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-q'], { env });
    r = install();
  }
  return has('tmux') ? null : `tmux could not be installed (apt-get install tmux: ${(r.stderr || r.stdout).trim().split('\n').pop()})`;
}
const noTmux = ensureTmux();
if (noTmux) console.warn(`[watch.test] skipping the terminal tests: ${noTmux}`);

let e2e: E2eCluster;
let cluster: ClusterHandle;
let ms2m: Ms2mClient;
const deployed: string[] = [];

/** What the CLI needs to find this file's workers. */
const cliEnv = () => ({ ...process.env, MS2M_TASK_QUEUE: taskQueue, MS2M_TEMPORAL_ADDRESS: loadConfig().temporalAddress, LANG: 'C.UTF-8' });

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-S', SOCKET, '-u', ...args], { env: cliEnv(), encoding: 'utf8' });
}

/**
 * A tmux window of 120×40 running `args` of the CLI; after the CLI exits the window stays, showing its
 * exit status. The shell ignores Ctrl-C (its trap), so Ctrl-C reaches only the CLI.
 */
function openWindow(name: string, args: string[]): void {
  const command = `trap : INT; node ${main} ${args.join(' ')}; echo "[${name} exited $?]"; sleep 3600`;
  const env = Object.entries({ MS2M_TASK_QUEUE: taskQueue, MS2M_TEMPORAL_ADDRESS: loadConfig().temporalAddress, LANG: 'C.UTF-8' }).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  tmux('new-session', '-d', '-s', name, '-x', '120', '-y', '40', ...env, 'sh', '-c', command);
}

/** The window's screen, one string per row (tmux trims trailing blanks of each row); `all`: with what scrolled off the top. */
const screen = (name: string, all = false): string[] =>
  tmux('capture-pane', '-p', '-t', name, ...(all ? ['-S', '-'] : []))
    .replace(/\n+$/, '')
    .split('\n');

async function screenShows(name: string, what: RegExp, ms = 30_000): Promise<string[]> {
  const until = Date.now() + ms;
  for (;;) {
    const s = screen(name);
    if (what.test(s.join('\n'))) return s;
    if (Date.now() > until) throw new Error(`the screen never showed ${what}; it shows:\n${s.join('\n')}`);
    await sleep(100);
  }
}

beforeAll(async () => {
  e2e = await startE2eCluster('watch', ['node-a', 'node-b'], { taskQueue });
  ({ cluster } = e2e);
  ms2m = new Ms2mClient(cluster.client, { taskQueue });
});

afterAll(async () => {
  if (!noTmux) spawnSync('tmux', ['-S', SOCKET, 'kill-server']);
  rmSync(SOCKET, { force: true });
  for (const s of deployed) await undeploy(cluster, s).catch(() => undefined);
  await stopE2eCluster(e2e);
});

describe.skipIf(noTmux !== null)('on a terminal', () => {
  it('ms2m watch draws a migration under load in place: service, a bar per phase, lag or elapsed time, then done', { timeout: 180_000 }, async () => {
    const service = `watch-${run}`;
    openWindow('watch', ['watch', '--interval', '200ms']);
    await screenShows('watch', /ms2m watch · migrations on task queue .* none running, waiting for one/);

    // The migration runs under load while the screen is read every 100 ms.
    let ended = false;
    // 5 ms of work per message: the copy replays at about 200 msg/s against 120 arriving, so its lag falls for a while.
    const scenario = runScenario(cluster, { service, from: 'node-a', to: 'node-b', strategy: 'shadow', rate: 120, workMs: 5, stateBytes: 32 * 1024 * 1024, warmupMs: 2000, settleMs: 500 }).finally(
      () => (ended = true),
    );
    const screens: string[][] = [];
    while (!ended) {
      screens.push(screen('watch'));
      await sleep(100);
    }
    const { report } = await scenario;
    expect(report.outcome).toBe('completed');
    const final = await screenShows('watch', new RegExp(`${service} +node-a → node-b +shadow +DONE in \\d+\\.\\d s, downtime \\d+ ms`), 10_000);

    const header = new RegExp(`^${service} +node-a → node-b +shadow +(validate|prepare|checkpoint|transfer|restore|replay|fence|finalize) +\\d+\\.\\d s`);
    const during = screens.filter((s) => s.some((l) => header.test(l)));
    // Several distinct frames of the running migration…
    expect(new Set(during.map((s) => s.join('\n'))).size).toBeGreaterThanOrEqual(3);
    for (const s of during) {
      // …each with its eight phase rows exactly once, below its header: nothing scrolled or was drawn twice…
      const row = s.findIndex((l) => header.test(l));
      expect(s.slice(row + 1, row + 9).map((l) => PHASE_ROW.exec(l)?.[1])).toEqual(['validate', 'prepare', 'checkpoint', 'transfer', 'restore', 'replay', 'fence', 'finalize']);
      expect(s.filter((l) => PHASE_ROW.test(l))).toHaveLength(8);
    }
    // …at the same rows of the screen every time, under the status line, which stays the first row.
    expect(new Set(during.map((s) => s.findIndex((l) => header.test(l))))).toEqual(new Set([1]));
    expect(new Set(during.map((s) => s.length))).toEqual(new Set([9 + 1]));
    expect(during.every((s) => /^ms2m watch · migrations on task queue .* · 1 running · \d\d:\d\d:\d\d · Ctrl-C to stop$/.test(s[0]))).toBe(true);
    // The elapsed time moved on in place, and the replay showed its lag (the copy replays under load).
    const elapsed = new Set(during.map((s) => s.find((l) => header.test(l))!.match(/(\d+\.\d) s/)![1]));
    expect(elapsed.size).toBeGreaterThanOrEqual(2);
    const replaying = during.filter((s) => s.some((l) => /^ {2}replay +[\u2588\u2591]{24} lag \d+/.test(l)));
    expect(replaying.length).toBeGreaterThan(0);
    // Finished phases show their time.
    expect(final.find((l) => l.startsWith('  checkpoint'))).toMatch(/\u2588{24} \d+ ms$/);
    expect(final.find((l) => l.startsWith('  replay'))).toMatch(/\u2588{24} \d+ ms$/);

    const shown = replaying.at(-1)!;
    writeFileSync(CAPTURE_FILE, `# ms2m watch --interval 200ms, during the replay (tmux capture-pane -p)\n${shown.join('\n')}\n\n# after the migration ended\n${final.join('\n')}\n`);

    // It keeps watching until Ctrl-C, then exits 0.
    await sleep(1000);
    expect(screen('watch').join('\n')).not.toMatch(/\[watch exited/);
    tmux('send-keys', '-t', 'watch', 'C-c');
    await screenShows('watch', /\[watch exited 0\]/, 10_000);
  });

  it('ms2m migrate shows its migration with the same view, then the report', { timeout: 120_000 }, async () => {
    const service = `migrate-${run}`;
    await deployWorkload(cluster, 'game', service, 'node-a', { stateBytes: 32 * 1024 * 1024 });
    deployed.push(service);
    openWindow('migrate', ['migrate', '--service', service, '--to', 'node-b']);
    const screens: string[][] = [];
    const until = Date.now() + 60_000;
    while (!/\[migrate exited/.test(screen('migrate').join('\n')) && Date.now() < until) {
      screens.push(screen('migrate'));
      await sleep(100);
    }
    // The report is longer than the window: read what scrolled off too.
    const last = screen('migrate', true);
    expect(last.join('\n')).toMatch(/\[migrate exited 0\]/);
    const reported = last.findIndex((l) => new RegExp(`^Migration \\S+: ${service} node-a → node-b \\(shadow\\) — COMPLETED`).test(l));
    expect(reported).toBeGreaterThan(0);
    // While it ran: the header and the phase rows, redrawn at the top of the window.
    const header = new RegExp(`^${service} +node-a → node-b +shadow +(validate|prepare|checkpoint|transfer|restore|replay|fence|finalize) +\\d+\\.\\d s`);
    const during = screens.filter((s) => header.test(s[0]));
    expect(during.length).toBeGreaterThan(0);
    for (const s of during) expect(s.slice(1, 9).every((l) => PHASE_ROW.test(l))).toBe(true);
    // The final view stays above the report, drawn once: the header says DONE, the phase rows follow.
    expect(last[0]).toMatch(new RegExp(`^${service} +node-a → node-b +shadow +DONE in \\d+\\.\\d s, downtime \\d+ ms`));
    expect(last.slice(1, 9).map((l) => PHASE_ROW.exec(l)?.[1])).toEqual(['validate', 'prepare', 'checkpoint', 'transfer', 'restore', 'replay', 'fence', 'finalize']);
    expect(last.slice(0, reported).filter((l) => PHASE_ROW.test(l))).toHaveLength(8);
    deployed.splice(deployed.indexOf(service), 1); // migrated: undeploy finds it on node-b
    await undeploy(cluster, service);
  });
});

/** The CLI with stdout and stderr piped. */
function cli(args: string[]): { done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, [main, ...args], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return { done: new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr }))) };
}

describe('with stdout piped', () => {
  it('ms2m watch prints plain lines, one per stage change, and --until-done ends with the migration', { timeout: 120_000 }, async () => {
    const service = `plain-${run}`;
    const none = await cli(['watch', '--once', '--service', service]).done;
    expect(none).toMatchObject({ code: 0, stdout: `no running migrations of ${service} on task queue ${taskQueue}\n` });

    await deployWorkload(cluster, 'game', service, 'node-a', { stateBytes: 64 * 1024 * 1024 });
    deployed.push(service);
    const watching = cli(['watch', '--service', service, '--until-done', '--interval', '200ms']).done;
    await sleep(1000);
    const handle = await ms2m.startMigration({ service, targetNode: 'node-b' });
    const result = handle.result();
    // Snapshots while it runs, until one shows it (visibility lists it within a second or so).
    let snapshot = { code: null as number | null, stdout: '', stderr: '' };
    for (let i = 0; i < 5 && !snapshot.stdout.startsWith('['); i++) snapshot = await cli(['watch', '--once', '--service', service]).done;
    const report = await result;
    expect(report.outcome).toBe('completed');
    deployed.splice(deployed.indexOf(service), 1);
    const { code, stdout, stderr } = await watching;

    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).not.toMatch(/\x1b/); // no terminal control sequences
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`watching migrations of ${service} on task queue ${taskQueue} (until they end)`);
    const line = new RegExp(`^\\[ *\\d+\\.\\d\\d s\\] ${service} node-a → node-b \\(shadow\\): (.+)$`);
    const stages = lines.slice(1).map((l) => {
      expect(l).toMatch(line);
      return line.exec(l)![1].split(' ')[0];
    });
    // One line per stage change: no stage twice in a row, in the phases' order, ending with the outcome.
    expect(stages.length).toBeGreaterThanOrEqual(3);
    stages.slice(1).forEach((s, i) => expect(s).not.toBe(stages[i]));
    const order = ['validate', 'prepare', 'checkpoint', 'transfer', 'restore', 'replay', 'fence', 'finalize', 'done'];
    expect(stages.map((s) => order.indexOf(s))).toEqual([...stages.map((s) => order.indexOf(s))].sort((a, b) => a - b));
    expect(lines.at(-1)).toMatch(new RegExp(`: done in ${report.totalMs} ms, downtime ${report.downtimeMs} ms$`));

    expect(snapshot.code).toBe(0);
    expect(snapshot.stdout).toMatch(new RegExp(`^\\[ *\\d+\\.\\d\\d s\\] ${service} node-a → node-b \\(shadow\\): (prepare|checkpoint|transfer|restore|replay|fence|finalize|done)`));
    await undeploy(cluster, service);
  });
});
