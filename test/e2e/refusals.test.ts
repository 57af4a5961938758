/**
 * Bad requests against the real stack: each is refused with an error that names the field and the fix,
 * and leaves everything as it was (the service serving where it was, no lock, no replay queue).
 * Also overload: a copy that cannot keep up still ends replay, and the cost shows as downtime.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import * as amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster, reapInstances } from '../../runtimes/local/test-cluster';
import { deployWorkload, runScenario, undeploy } from '../../cli/scenario';
import { gameTopology } from '../../examples/game/game';
import { loadConfig } from '../../lib/config';
import { ensureStack } from '../../lib/stack';
import { armFailpoint, releaseFailpoint, waitForFailpoint } from '../../lib/failpoints';
import type { MigrationReport } from '../../lib/migration';
import { lockHolder } from '../../activities/lock';
import { ClusterStore } from '../../runtimes/local/cluster-store';
import type { Placement } from '../../runtimes/types';
import { ControlClient } from '../../service/control-client';

const run = Date.now().toString(36);
let cluster: LocalCluster;
let home: string;
let plain: ChildProcess | undefined;
const service = `refuse-${run}`;
let deployed: Placement;

beforeAll(async () => {
  await ensureStack();
  home = mkdtempSync(path.join(os.tmpdir(), 'ms2m-refusals-'));
  cluster = await LocalCluster.start({ nodes: ['node-a', 'node-b', 'node-d'], home, taskQueue: `ms2m-refusals-${run}` });
  // node-d is registered but its agent is gone: a node that exists and does not answer.
  await cluster.stopProcess('agent-node-d', 'SIGKILL');
  deployed = await deployWorkload(cluster, 'game', service, 'node-a');
});

afterAll(async () => {
  plain?.kill('SIGKILL');
  await undeploy(cluster, service).catch(() => undefined);
  await cluster?.stop();
  reapInstances(home);
});

/** Starts migrateService with this input and returns the failure it ends with. */
async function refusal(input: unknown, id = `refused-${randomUUID().slice(0, 8)}`): Promise<ApplicationFailure> {
  const err = await cluster.client.workflow.execute('migrateService', { taskQueue: cluster.opts.taskQueue, workflowId: id, args: [input] }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

/** The service serves where it did, as it did, and no migration left anything behind. */
async function expectUnchanged(): Promise<void> {
  expect(await cluster.placement(service)).toMatchObject({ node: 'node-a', instanceId: deployed.instanceId });
  expect(await lockHolder(cluster.client, service)).toBeNull();
  expect((await cluster.liveInstances(service)).map((i) => i.instanceId)).toEqual([deployed.instanceId]);
  const control = await ControlClient.connect(loadConfig().amqpUrl);
  try {
    expect(await control.command(deployed.instanceId, { kind: 'status', digest: false })).toMatchObject({ role: 'primary', consuming: 'primary', fenced: false });
  } finally {
    await control.close();
  }
  const res = await fetch(`${loadConfig().amqpMgmtUrl.replace(/\/\/[^@]*@/, '//')}/api/queues`, {
    headers: { authorization: 'Basic ' + Buffer.from('guest:guest').toString('base64') },
  });
  const queues = ((await res.json()) as Array<{ name: string }>).map((q) => q.name);
  expect(queues.filter((q) => q.startsWith(`ms2m.replay.${service}.`))).toEqual([]);
}

describe('bad requests are refused, naming the field and the fix, and change nothing', () => {
  it('an unknown service', async () => {
    const f = await refusal({ service: 'no-such-service', targetNode: 'node-b' });
    expect(f.type).toBe('ServiceNotFound');
    expect(f.message).toMatch(/^service: no service named "no-such-service" is deployed; deploy it first/);
  });

  it('an unknown node', async () => {
    const f = await refusal({ service, targetNode: 'node-x' });
    expect(f.type).toBe('InvalidInput');
    expect(f.message).toMatch(/^targetNode: there is no node "node-x"; start its agent \(ms2m agent --node node-x\)/);
    await expectUnchanged();
  });

  it('a node whose agent does not answer', async () => {
    const f = await refusal({ service, targetNode: 'node-d', timeouts: { nodeScheduleToStartMs: 2000 } });
    expect(f.type).toBe('NodeUnreachable');
    // The queue the node registered, as the cluster side reports it.
    const queue = (await cluster.node('node-d'))!.taskQueue;
    expect(f.message).toBe(`targetNode: node "node-d" does not answer: no agent took work from its task queue ${queue} within 2000 ms; start its agent (ms2m agent --node node-d) or choose another node`);
    await expectUnchanged();
  });

  it('the node the service already runs on', async () => {
    const f = await refusal({ service, targetNode: 'node-a' });
    expect(f.type).toBe('InvalidInput');
    expect(f.message).toMatch(/^targetNode: .* already runs on node-a; choose another node/);
    await expectUnchanged();
  });

  it('an unknown strategy and an invalid replay threshold', async () => {
    const f = await refusal({ service, targetNode: 'node-b', strategy: 'teleport', replay: { threshold: -5 } });
    expect(f.type).toBe('InvalidInput');
    expect(f.message).toMatch(/strategy: strategy must be one of stop-and-copy, shadow/);
    expect(f.message).toMatch(/replay.threshold: replay.threshold must be a whole number ≥ 0, got -5/);
    const g = await refusal({ service, targetNode: 'node-b', replay: { threshold: 'ten' } });
    expect(g.message).toMatch(/replay.threshold: replay.threshold must be a number of messages, got "ten"/);
    await expectUnchanged();
  });

  it('malformed JSON, as pasted into the Web UI', async () => {
    const workflowId = `malformed-${run}`;
    const cfg = loadConfig();
    // The Web UI sends the input box's text as a json/plain payload; this one is not JSON.
    await cluster.client.workflowService.startWorkflowExecution({
      namespace: cfg.temporalNamespace,
      workflowId,
      workflowType: { name: 'migrateService' },
      taskQueue: { name: cluster.opts.taskQueue },
      input: { payloads: [{ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(`{"service": "${service}", targetNode: node-b}`) }] },
      requestId: randomUUID(),
    });
    const err = await cluster.client.workflow.getHandle(workflowId).result().catch((e: unknown) => e);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe('InvalidInput');
    expect(cause.message).toMatch(/\(input\): not valid JSON .*; paste one JSON object, e.g. \{"service": "game"/);
    await expectUnchanged();
  });

  it('a service whose messages carry no ids', async () => {
    const conn = await amqp.connect(loadConfig().amqpUrl);
    const ch = await conn.createConfirmChannel();
    for (let i = 0; i < 3; i++) ch.publish(gameTopology(service).exchange, 'event.p1', Buffer.from(JSON.stringify({ player: 'p1', points: 1 })));
    await ch.waitForConfirms();
    await conn.close();
    await sleep(500);
    const f = await refusal({ service, targetNode: 'node-b' });
    expect(f.type).toBe('NotMigratable');
    expect(f.message).toMatch(/^service: .* received 3 message\(s\) without ids.*Publish with StampingProducer \(headers x-ms2m-producer and x-ms2m-seq\) or set each message's messageId/);
    await expectUnchanged();
  });

  it('a service that does not speak the protocol', async () => {
    // A plain RabbitMQ consumer: it consumes the queue but knows nothing of ms2m's control commands.
    const name = `plain-${run}`;
    const script = `const amqp=require('amqplib');amqp.connect(process.argv[1]).then(async c=>{const ch=await c.createChannel();await ch.assertQueue('${name}.primary');ch.consume('${name}.primary',m=>ch.ack(m));})`;
    plain = spawn(process.execPath, ['-e', script, loadConfig().amqpUrl], { cwd: loadConfig().projectRoot, stdio: 'ignore' });
    new ClusterStore(home).setPlacement(name, {
      service: name,
      node: 'node-a',
      instanceId: `${name}-1`,
      spec: { command: [process.execPath, '-e', script], env: {}, primaryQueue: `${name}.primary` },
      updatedAt: Date.now(),
    });
    const f = await refusal({ service: name, targetNode: 'node-b', timeouts: { controlReplyMs: 1500 } });
    expect(f.type).toBe('NotMigratable');
    expect(f.message).toMatch(/^service: .* does not answer ms2m control commands .* within 1500 ms; a migratable service must run the MigratableService loop/);
    expect(await lockHolder(cluster.client, name)).toBeNull();
  });
});

/**
 * The target node is slower than the source's: the copy's process is put in a cgroup with half a CPU
 * while it is restored and still stopped, and let go once the migration ended.
 */
async function slowCopy(handle: WorkflowHandle, to: string): Promise<void> {
  const point = `${to}/restore-stopped`;
  const group = `/sys/fs/cgroup/cpu/ms2m-slow-${run}`;
  armFailpoint(home, point, { action: 'pause' });
  let pid = 0;
  try {
    await waitForFailpoint(home, point, 90_000);
    const copy = (await handle.query<MigrationReport>('report')).targetInstance;
    pid = cluster.instancePid(copy);
    mkdirSync(group, { recursive: true });
    writeFileSync(path.join(group, 'cpu.cfs_period_us'), '100000');
    writeFileSync(path.join(group, 'cpu.cfs_quota_us'), '50000');
    writeFileSync(path.join(group, 'cgroup.procs'), String(pid));
  } finally {
    releaseFailpoint(home, point);
  }
  try {
    await handle.result().catch(() => undefined);
  } finally {
    if (pid) writeFileSync('/sys/fs/cgroup/cpu/cgroup.procs', String(pid), { flag: 'a' });
    rmdirSync(group);
  }
}

describe('overload', () => {
  it(
    'a copy slower than its source: replay ends early on the lag trend, the catch-up is finite, nothing is lost',
    async () => {
      // 12 ms of CPU per message caps the service near 80 msg/s, and more arrive; the copy gets half a CPU,
      // so it applies the source's log more slowly than the source writes it.
      const { report } = await runScenario(cluster, {
        service: `overload-${run}`,
        from: 'node-a',
        to: 'node-b',
        strategy: 'shadow',
        rate: 110,
        workMs: 12,
        warmupMs: 1500,
        settleMs: 500,
        threshold: 5,
        duringMigration: (handle) => slowCopy(handle, 'node-b'),
      });
      console.log(`overload: replay ${JSON.stringify(report.replay)}, downtime ${report.downtimeMs} ms, observed ${report.verification!.observedDowntimeMs} ms`);
      expect(report.outcome).toBe('completed');
      expect(report.replay.endedBy).toBe('not-converging');
      expect(report.replay.lagSlopePerSec).not.toBeNull();
      expect(report.replay.lagSlopePerSec!).toBeGreaterThan(-2);
      expect(report.replay.estimatedCatchUpMs).not.toBeNull();
      // The cost of not converging shows as downtime (the finite catch-up), never as lost messages.
      expect(report.downtimeMs).toBeGreaterThan(0);
      const v = report.verification!;
      expect(v.lost).toBe(0);
      expect(v.duplicated).toBe(0);
      expect(v.duplicateOutputs).toBe(0);
      expect(v.processed).toBe(v.published);
      expect(v.finalStateMatchesProducers).toBe(true);
    },
    240_000,
  );
});
