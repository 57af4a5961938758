/**
 * The order-sensitive ledger (examples/ledger) migrated for real under load from three producers at
 * different rates, each on its own channel: the setting in which RabbitMQ may hand two queues the same
 * messages in different interleavings. The oracle (examples/ledger/oracle.ts) compares the apply
 * sequences of every instance that ever ran, message by message, and recomputes the state and every
 * output from the producers' log; ms2m's own digests and marks are not evidence here.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import * as amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterHandle } from '../../runtimes/types';
import { startE2eCluster, stopE2eCluster, type E2eCluster } from './e2e-cluster';
import { ServiceLoad, deployWorkload, runScenario, undeploy } from '../../cli/scenario';
import { tracePath } from '../../cli/workloads';
import { ledgerTopology } from '../../examples/ledger/ledger';
import { parseTrace } from '../../examples/ledger/oracle';
import { loadConfig } from '../../lib/config';
import { armFailpoint, releaseFailpoint, waitForFailpoint } from '../../lib/failpoints';
import type { MigrationReport, Strategy } from '../../lib/migration';
import { expectExact } from './exact';
import { MigrationHandle } from '../../sdk';
import { readFileSync } from 'node:fs';

const run = Date.now().toString(36);
let e2e: E2eCluster;
let cluster: ClusterHandle;
let home: string;

beforeAll(async () => {
  e2e = await startE2eCluster('ledger', ['node-a', 'node-b'], { taskQueue: `ms2m-ledger-${run}` });
  ({ cluster, home } = e2e);
});

afterAll(async () => {
  await stopE2eCluster(e2e);
});


/**
 * Busy processes for `ms`: RabbitMQ interleaves channels differently into two queues mostly when it is
 * short of CPU (the broker-only probe shows 0 differing positions of 6,400 on an idle 2-core machine and
 * about 50 with three busy loops beside it), as on a loaded node.
 */
function cpuHogs(n: number, ms: number): Promise<void> {
  const hogs = Array.from({ length: n }, () => spawn(process.execPath, ['-e', `const end = Date.now() + ${ms}; while (Date.now() < end);`], { stdio: 'ignore' }));
  return Promise.all(hogs.map((h) => new Promise<void>((r) => h.once('exit', () => r())))).then(() => undefined);
}

/**
 * A witness queue bound to the service's exchange as a replay queue used to be: afterwards, how many
 * adjacent pairs it holds in the opposite order from the one the source applied them in. A copy that
 * replayed such a queue would have applied those pairs out of order.
 */
async function witness(exchange: string, queue: string) {
  const conn = await amqp.connect(loadConfig().amqpUrl);
  const ch = await conn.createChannel();
  await ch.assertQueue(queue, { durable: true, arguments: { 'x-expires': 600_000 } });
  await ch.bindQueue(queue, exchange, '#');
  return {
    async inversions(applyOrder: string[]): Promise<{ held: number; inversions: number }> {
      const position = new Map(applyOrder.map((k, i) => [k, i]));
      const held: number[] = [];
      for (let m = await ch.get(queue, { noAck: true }); m; m = await ch.get(queue, { noAck: true })) {
        const p = position.get(String(m.properties.messageId));
        if (p !== undefined) held.push(p);
      }
      await ch.deleteQueue(queue);
      await conn.close();
      let inversions = 0;
      for (let i = 1; i < held.length; i++) if (held[i] < held[i - 1]) inversions++;
      return { held: held.length, inversions };
    },
  };
}

describe('an order-sensitive service keeps its exact apply sequence across migrations', () => {
  it(
    'a long replay (the transfer held for 8 s at 640 msg/s on a busy machine): the copy applies exactly the source\'s sequence',
    async () => {
      const hold = 'node-a/transfer';
      const service = `long-${run}`;
      let w: Awaited<ReturnType<typeof witness>> | undefined;
      const { report } = await runScenario(cluster, {
        service,
        workload: 'ledger',
        from: 'node-a',
        to: 'node-b',
        strategy: 'shadow',
        rate: 640,
        warmupMs: 2000,
        settleMs: 1500,
        afterDeploy: async () => {
          w = await witness(ledgerTopology(service).exchange, `witness-${service}`);
        },
        duringMigration: async () => {
          armFailpoint(home, hold, { action: 'pause' });
          try {
            await waitForFailpoint(home, hold, 60_000);
            await cpuHogs(3, 8000);
          } finally {
            releaseFailpoint(home, hold);
          }
        },
      });
      const applyOrder = parseTrace(readFileSync(tracePath(home, service), 'utf8'))
        .sort((a, b) => a.n - b.n)
        .filter((e, i, all) => i === 0 || all[i - 1].n !== e.n)
        .map((e) => `${e.producer}:${e.seq}`);
      const broker = await w!.inversions(applyOrder);
      console.log(`the source applied ${applyOrder.length} messages; a queue bound like the old replay queue held ${broker.held} of them with ${broker.inversions} adjacent pairs inverted; the copy replayed ${report.replay.replayed} from the apply log, ${report.verification!.order!.compared} positions compared`);
      expect(report.failure ?? null).toBeNull();
      expect(report.outcome).toBe('completed');
      expect(report.replay.replayed).toBeGreaterThan(800);
      // Every position the copy replayed was also applied by the source: all of them compared equal.
      expectExact(report.verification!, 800);
    },
    180_000,
  );

  it(
    'a fast service at 1,500 msg/s, twice what one confirm per message allowed: pipelined confirms keep the exact sequence and every output once',
    async () => {
      const { report } = await runScenario(cluster, {
        service: `fast-${run}`,
        workload: 'ledger',
        from: 'node-a',
        to: 'node-b',
        strategy: 'shadow',
        rate: 1500,
        workMs: 0,
        warmupMs: 3000,
        settleMs: 1000,
      });
      const v = report.verification!;
      console.log(`fast ledger: ${v.published} published, p99 latency ${v.baselineP99E2eLatencyMs} ms before the migration, ${report.replay.replayed} replayed, ${v.order?.compared} positions compared, downtime ${report.downtimeMs} ms`);
      expect(report.failure ?? null).toBeNull();
      expect(report.outcome).toBe('completed');
      // It kept up with the arrivals (one confirm per message lagged seconds behind here: p99 grew with the backlog).
      expect(v.baselineP99E2eLatencyMs).toBeLessThan(500);
      expect(report.replay.endedBy).toBe('threshold');
      // At least about a second of the stream replayed and compared position by position (the replay is as
      // long as checkpoint, transfer and restore: ~1.2 s here since the images are in memory).
      expectExact(v, 1000);
    },
    180_000,
  );

  it(
    'six migrations back and forth under load, both strategies: one sequence from the first message to the last',
    async () => {
      const service = `rounds-${run}`;
      const load = new ServiceLoad(cluster, service, 120, 3, 'ledger');
      await load.prepare();
      const reports: MigrationReport[] = [];
      try {
        await deployWorkload(cluster, 'ledger', service, 'node-a');
        await load.start();
        await sleep(1500);
        const from = Date.now();
        const strategies: Strategy[] = ['shadow', 'shadow', 'stop-and-copy', 'shadow', 'stop-and-copy', 'shadow'];
        for (const [i, strategy] of strategies.entries()) {
          const targetNode = i % 2 === 0 ? 'node-b' : 'node-a';
          const handle = await cluster.client.workflow.start('migrateService', {
            taskQueue: cluster.opts.taskQueue,
            workflowId: `rounds-${run}-${i}`,
            args: [{ service, targetNode, strategy }],
          });
          const report = await new MigrationHandle(handle).result({ pollMs: 200 });
          expect(report.failure ?? null, `migration ${i + 1} (${strategy})`).toBeNull();
          reports.push(report);
          await sleep(700);
        }
        const { verification } = await load.finish({ from, to: Date.now() });
        expectExact(verification, 1);
        expect(reports.every((r) => r.outcome === 'completed')).toBe(true);
      } finally {
        await load.close();
        await undeploy(cluster, service).catch(() => undefined);
      }
    },
    300_000,
  );
});
