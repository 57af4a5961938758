/**
 * Measures how many messages per second the example service really processes (apply, publish the output,
 * wait for the broker's confirm, acknowledge) on this machine, so the benchmark's "above capacity" rate
 * is above the measured capacity and not a guess from the CPU cost per message.
 */
import * as amqp from 'amqplib';
import { loadConfig } from '../lib/config';
import { OutputCollector } from '../lib/output-log';
import { StampingProducer, type Published } from '../service/producer';
import type { ClusterHandle } from '../runtimes/types';
import { deployWorkload, drained, undeploy } from '../cli/scenario';
import { workload, type WorkloadName } from '../cli/workloads';

export async function measureCapacity(cluster: ClusterHandle, node: string, workMs: number, name: WorkloadName = 'game', messages = 1500): Promise<number> {
  const cfg = loadConfig();
  const service = 'bench-capacity';
  const w = workload(name);
  const topo = w.topology(service);
  const conn = await amqp.connect(cfg.amqpUrl);
  const collector = new OutputCollector(cfg.amqpUrl, topo.outputExchange);
  try {
    // A backlog waiting before the service starts: it then runs flat out until the queue is empty.
    const ch = await conn.createConfirmChannel();
    await ch.deleteQueue(topo.queue);
    await ch.assertExchange(topo.exchange, 'topic', { durable: true });
    await ch.assertQueue(topo.queue, { durable: true });
    await ch.bindQueue(topo.queue, topo.exchange, '#');
    const producer = new StampingProducer(ch, `capacity-${Date.now().toString(36)}-p1`, topo.exchange);
    const published: Published[] = [];
    for (let seq = 1; seq <= messages; seq++) {
      const m = w.message(0, seq);
      published.push(await producer.publish(m.routingKey, m.body));
    }
    await collector.start();
    await deployWorkload(cluster, name, service, node, { workMs });
    await drained(collector, published);
    const times = collector.outputs.map((o) => o.receivedAt).sort((a, b) => a - b);
    if (times.length < messages / 2) throw new Error(`capacity run processed only ${times.length} of ${messages} messages`);
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
