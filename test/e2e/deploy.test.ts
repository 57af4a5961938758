/**
 * Deploys against the real stack: a spec that cannot serve is refused within seconds of the cause being
 * knowable, says why (the field, the fix, and what the node saw: exit status, log tail), and leaves
 * nothing behind (no placement, no live instance, no lock, no control queue). The CLI deploys and
 * undeploys for real, and the unknown-service refusal points at the CLI command that does it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import * as amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterHandle, LocalSpec } from '../../runtimes/types';
import { startE2eCluster, stopE2eCluster, type E2eCluster } from './e2e-cluster';
import { workload } from '../../cli/workloads';
import { gameTopology } from '../../examples/game/game';
import { loadConfig } from '../../lib/config';
import { lockHolder } from '../../activities/lock';
import { ControlClient } from '../../service/control-client';

/** Specs as a deploy has always taken them: without `runtime`, which defaults to local. */
type ServiceSpec = Omit<LocalSpec, 'runtime'>;

const run = Date.now().toString(36);
let e2e: E2eCluster;
let cluster: ClusterHandle;
let home: string;
const taskQueue = `ms2m-deploy-${run}`;
/** Services whose game instance declared its queues here; removed at the end. */
const gameServices: string[] = [];
/** A deploy must be refused long before this; only a guard against a hang, not a timing target. */
const HANG_GUARD_MS = 15_000;

beforeAll(async () => {
  e2e = await startE2eCluster('deploy', ['node-a'], { taskQueue });
  ({ cluster, home } = e2e);
});

afterAll(async () => {
  await stopE2eCluster(e2e);
  const conn = await amqp.connect(loadConfig().amqpUrl);
  const ch = await conn.createChannel();
  for (const s of gameServices) await ch.deleteQueue(gameTopology(s).queue);
  await conn.close();
});

async function queueNames(): Promise<string[]> {
  const cfg = loadConfig();
  const url = new URL(cfg.amqpMgmtUrl);
  const auth = 'Basic ' + Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64');
  url.username = '';
  url.password = '';
  const res = await fetch(new URL('/api/queues', url), { headers: { authorization: auth } });
  return ((await res.json()) as Array<{ name: string }>).map((q) => q.name);
}

/** Deploys and returns the refusal it ends with, and how long it took. */
async function refusal(service: string, spec: ServiceSpec, extra: Record<string, unknown> = {}): Promise<{ failure: ApplicationFailure; ms: number }> {
  const t0 = performance.now();
  const err = await cluster.client.workflow
    .execute('deployService', { taskQueue, workflowId: `deploy-${service}`, args: [{ service, node: 'node-a', spec, ...extra }] })
    .catch((e: unknown) => e);
  const ms = Math.round(performance.now() - t0);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const failure = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(failure).toBeInstanceOf(ApplicationFailure);
  console.log(`${service}: refused in ${ms} ms with ${failure.type}: ${failure.message}`);
  expect(ms).toBeLessThan(HANG_GUARD_MS);
  return { failure, ms };
}

/** Nothing of the refused deploy remains: no placement, no live instance, a free lock, no control queue. */
async function expectNothingLeft(service: string): Promise<void> {
  expect(await cluster.placement(service)).toBeNull();
  expect(await lockHolder(cluster.client, service)).toBeNull();
  expect(await cluster.liveInstances(service)).toEqual([]);
  expect((await queueNames()).filter((q) => q.startsWith(`ms2m.ctl.${service}-`))).toEqual([]);
}

const spec = (command: string[], more: Partial<ServiceSpec> = {}): ServiceSpec => ({ command, env: {}, primaryQueue: 'some.primary', ...more });

describe('a deploy that cannot serve is refused at once, says why, and leaves nothing', () => {
  it('a program that does not exist', async () => {
    const { failure } = await refusal(`nosuch-${run}`, spec(['nosuchprog', '--port', '80']));
    expect(failure.type).toBe('InvalidSpec');
    expect(failure.message).toMatch(
      /^spec.command\[0\]: "nosuchprog" is not an executable on node-a \(looked in PATH=[^)]*\/usr\/bin[^)]*\); give the path of the program, e.g. \["node", "dist\/examples\/game\/service.js"\]$/,
    );
    await expectNothingLeft(`nosuch-${run}`);

    const relative = await refusal(`relative-${run}`, spec(['./bin/serve'], { cwd: home }));
    expect(relative.failure.type).toBe('InvalidSpec');
    expect(relative.failure.message).toBe(
      `spec.command[0]: "./bin/serve" does not exist on node-a (resolved against spec.cwd ${home} to ${path.join(home, 'bin', 'serve')}); give the path of the program, e.g. ["node", "dist/examples/game/service.js"]`,
    );
    await expectNothingLeft(`relative-${run}`);

    const cwd = await refusal(`nocwd-${run}`, spec(['sleep', '600'], { cwd: path.join(home, 'no-such-dir') }));
    expect(cwd.failure.type).toBe('InvalidSpec');
    expect(cwd.failure.message).toMatch(/^spec.cwd: ".*no-such-dir" is not a directory on node-a; give an existing directory, or leave spec.cwd out/);
    await expectNothingLeft(`nocwd-${run}`);
  });

  it('a file that exists but is not executable', async () => {
    const script = path.join(home, 'serve.sh');
    writeFileSync(script, '#!/bin/sh\nexec sleep 600\n');
    chmodSync(script, 0o644);
    const { failure } = await refusal(`noexec-${run}`, spec([script]));
    expect(failure.type).toBe('InvalidSpec');
    expect(failure.message).toBe(
      `spec.command[0]: "${script}" is not executable on node-a (${script} has mode 644); make it executable (chmod +x ${script}) or run it through its interpreter, e.g. ["sh", "${script}"] or ["node", "${script}"]`,
    );
    await expectNothingLeft(`noexec-${run}`);
  });

  it('a process that exits at once: its exit code and the end of its log', async () => {
    const said = await refusal(`exits-${run}`, spec([process.execPath, '-e', 'console.error("config: MS2M_AMQP_URL is not set"); process.exit(3)']));
    expect(said.failure.type).toBe('InstanceExited');
    expect(said.failure.message).toMatch(new RegExp(`^spec.command: exits-${run}-[0-9a-f]{8} exited with code 3 on node-a \\d+ ms after it started, before it answered ms2m control commands; fix the command`));
    expect(said.failure.message).toMatch(/The last 1 line\(s\) of its log \S+\.log:\n {2}\| config: MS2M_AMQP_URL is not set$/);
    await expectNothingLeft(`exits-${run}`);

    const silent = await refusal(`exits-quiet-${run}`, spec([process.execPath, '-e', 'process.exit(3)']));
    expect(silent.failure.type).toBe('InstanceExited');
    expect(silent.failure.message).toMatch(/ exited with code 3 on node-a .* Its log \S+\.log is empty\.$/);
    await expectNothingLeft(`exits-quiet-${run}`);
  });

  it('a process killed while starting: the signal, as its node agent saw it', async () => {
    const service = `killed-${run}`;
    const killer = (async () => {
      for (;;) {
        const [inst] = await cluster.liveInstances(service);
        if (inst) return cluster.signalInstance(inst.instanceId, 'SIGKILL');
        await sleep(20);
      }
    })();
    const { failure } = await refusal(service, spec(['sleep', '600']), { readyMs: 10_000 });
    await killer;
    expect(failure.type).toBe('InstanceExited');
    expect(failure.message).toMatch(new RegExp(`^spec.command: ${service}-[0-9a-f]{8} was killed by SIGKILL on node-a \\d+ ms after it started, before it answered`));
    await expectNothingLeft(service);
  });

  it('a process that runs but never answers: NotReady after readyMs, and it is stopped', async () => {
    const service = `silent-${run}`;
    const { failure, ms } = await refusal(service, spec(['sleep', '600']), { readyMs: 3000 });
    expect(failure.type).toBe('NotReady');
    expect(failure.message).toMatch(
      new RegExp(`^spec.command: ${service}-[0-9a-f]{8} runs on node-a but did not answer ms2m control commands within 3000 ms \\(readyMs\\); a deployed service must run the MigratableService loop`),
    );
    expect(failure.message).toMatch(/It was stopped\. Its log \S+ is empty\.$/);
    expect(ms).toBeGreaterThanOrEqual(3000);
    await expectNothingLeft(service);
  });

  it('the game service with a primaryQueue it does not consume', async () => {
    const service = `wrongq-${run}`;
    gameServices.push(service);
    const { failure } = await refusal(service, { ...workload('game').spec(service, { home, stateBytes: 0, workMs: 0 }), primaryQueue: 'other.primary' });
    expect(failure.type).toBe('InvalidSpec');
    expect(failure.message).toBe(`spec.primaryQueue: the instance consumes "${service}.primary", not "other.primary"; set spec.primaryQueue to "${service}.primary"`);
    await expectNothingLeft(service);
  });
});

/** Runs the CLI against this test's cluster. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const main = path.join(loadConfig().projectRoot, 'dist', 'cli', 'main.js');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, ...args], { env: { ...process.env, MS2M_HOME: home, MS2M_TASK_QUEUE: taskQueue }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('ms2m deploy and undeploy', () => {
  it('deploys the game service for real, and undeploy removes it', async () => {
    const service = `cli-${run}`;
    gameServices.push(service);
    const game = workload('game').spec(service, { home, stateBytes: 0, workMs: 0 });
    const env = Object.entries(game.env).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
    const deployed = await cli(['deploy', '--service', service, '--node', 'node-a', '--queue', game.primaryQueue, ...env, '--', ...game.command]);
    expect(deployed.stderr).not.toMatch(/refused|error/);
    expect(deployed.code).toBe(0);
    const m = new RegExp(`^\\[ms2m\\] ${service} deployed on node-a as instance (${service}-[0-9a-f]{8}), consuming ${service}\\.primary: `).exec(deployed.stdout);
    expect(m).not.toBeNull();
    const instanceId = m![1];
    expect(await cluster.placement(service)).toMatchObject({ node: 'node-a', instanceId, spec: { primaryQueue: game.primaryQueue, env: game.env } });
    expect((await cluster.liveInstances(service)).map((i) => i.instanceId)).toEqual([instanceId]);
    const control = await ControlClient.connect(loadConfig().amqpUrl);
    try {
      expect(await control.command(instanceId, { kind: 'status', digest: false })).toMatchObject({ role: 'primary', consuming: 'primary', input: { queue: game.primaryQueue } });
    } finally {
      await control.close();
    }

    const removed = await cli(['undeploy', '--service', service]);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toBe(`[ms2m] ${service} undeployed: instance ${instanceId} on node-a stopped\n`);
    expect(await cluster.placement(service)).toBeNull();
    expect(await cluster.liveInstances(service)).toEqual([]);

    const again = await cli(['undeploy', '--service', service]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(`no service named "${service}" is deployed; nothing to undeploy`);
  });

  it('prints the refusal and exits non-zero', async () => {
    const service = `cli-bad-${run}`;
    const r = await cli(['deploy', '--service', service, '--node', 'node-a', '--queue', 'x.primary', '--', 'nosuchprog']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(`[ms2m] deploy of ${service} refused: InvalidSpec: spec.command[0]: "nosuchprog" is not an executable on node-a`);
    await expectNothingLeft(service);
    const bad = await cli(['deploy', '--service', service, '--node', 'node-a', '--queue', 'x.primary', '--ready-ms', '5', '--', 'sleep', '1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch('error: invalid deployService input: readyMs: readyMs must be at least 1000 ms, got 5');
  });

  it('the unknown-service refusal names the deploy command, and that command exists', async () => {
    const r = await cli(['migrate', '--service', 'no-such-service', '--to', 'node-a']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch('ServiceNotFound: service: no service named "no-such-service" is deployed; deploy it first (ms2m deploy --service no-such-service');
    const suggested = /\(ms2m (deploy [^)]*)\)/.exec(r.stderr)![1];
    const help = await cli(['deploy', '--help']);
    expect(help.code).toBe(0);
    for (const flag of suggested.match(/--[a-z-]+/g)!) expect(help.stdout).toContain(flag);
  });
});
