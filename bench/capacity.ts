/**
 * Measures how many messages per second the example service really processes (apply, publish the output
 * with confirms, acknowledge) on this machine, so the benchmark's "above capacity" rate is above the
 * measured capacity and not a guess from the CPU cost per message. A run flat out is also where a
 * pipelined outbox would lose or repeat messages if it could, so each one is accounted like a migration:
 * from the producer's confirmed log, the output log and the final state, and a run that is not exact fails.
 */
import * as amqp from 'amqplib';
import { loadConfig } from '../lib/config';
import { OutputCollector } from '../lib/output-log';
import { verify } from '../lib/verify';
import { ControlClient } from '../service/control-client';
import { StampingProducer, type Published } from '../service/producer';
import type { ClusterHandle } from '../runtimes/types';
import { deployWorkload, drained, undeploy } from '../cli/scenario';
import { workload, type WorkloadName } from '../cli/workloads';

/** Enough for the middle 80 % of the run to last about a second even at 10,000 msg/s. */
const MESSAGES = 12_000;

export async function measureCapacity(cluster: ClusterHandle, node: string, workMs: number, name: WorkloadName = 'game', messages = capacityMessages(workMs)): Promise<number> {
  const cfg = loadConfig();
  const service = 'bench-capacity';
  const w = workload(name);
  const topo = w.topology(service);
  const conn = await amqp.connect(cfg.amqpUrl);
  const collector = new OutputCollector(cfg.amqpUrl, topo.outputExchange);
  const producerPrefix = `capacity-${Date.now().toString(36)}`;
  try {
    // A backlog waiting before the service starts: it then runs flat out until the queue is empty.
    const ch = await conn.createConfirmChannel();
    await ch.deleteQueue(topo.queue);
    await ch.assertExchange(topo.exchange, 'topic', { durable: true });
    await ch.assertQueue(topo.queue, { durable: true });
    await ch.bindQueue(topo.queue, topo.exchange, '#');
    const producer = new StampingProducer(ch, `${producerPrefix}-p1`, topo.exchange);
    const pending: Promise<Published>[] = [];
    for (let seq = 1; seq <= messages; seq++) {
      const m = w.message(0, seq);
      pending.push(producer.publish(m.routingKey, m.body));
    }
    const published = await Promise.all(pending);
    await collector.start();
    w.reset(service, cluster.opts.home);
    await deployWorkload(cluster, name, service, node, { workMs });
    await drained(collector, published);
    await expectExact(cluster, service, w, producerPrefix, published, collector, workMs);
    const times = collector.outputs.map((o) => o.receivedAt).sort((a, b) => a - b);
    // The first outputs carry the start-up; measure the steady middle of the run.
    const from = times[Math.floor(times.length * 0.1)];
    const to = times[Math.floor(times.length * 0.9)];
    return Math.round(((Math.floor(times.length * 0.9) - Math.floor(times.length * 0.1)) * 1000) / Math.max(1, to - from));
  } finally {
    await collector.stop();
    await undeploy(cluster, service).catch(() => undefined);
    await conn.close().catch(() => undefined);
  }
}

/** About 10 s of work at most: 12,000 messages when the work is short, fewer when it is long. */
export function capacityMessages(workMs: number): number {
  return workMs <= 0 ? MESSAGES : Math.max(1500, Math.min(MESSAGES, Math.round(10_000 / workMs)));
}

async function expectExact(cluster: ClusterHandle, service: string, w: ReturnType<typeof workload>, producerPrefix: string, published: Published[], collector: OutputCollector, workMs: number): Promise<void> {
  const placed = (await cluster.placement(service))?.instanceId ?? '';
  const control = await ControlClient.connect(loadConfig().amqpUrl, 'ms2m-bench-capacity');
  const final = await control.command(placed, { kind: 'status', digest: false }).finally(() => control.close());
  const judged = w.judge({ service, home: cluster.opts.home, producerPrefix, published, outputs: collector.outputs, final, killed: [] });
  const v = verify({ published, outputs: collector.outputs, from: 0, to: Date.now(), appliedByProducer: judged.appliedByProducer, finalStateMatchesProducers: judged.finalStateMatchesProducers });
  if (v.lost || v.duplicated || v.duplicateOutputs || !v.finalStateMatchesProducers) {
    throw new Error(
      `the capacity run at ${workMs} ms of work was not exact: ${v.lost} lost, ${v.duplicated} duplicated, ${v.duplicateOutputs} duplicate outputs, final state ${v.finalStateMatchesProducers ? 'matches' : 'does NOT match'} the producer's log`,
    );
  }
}
