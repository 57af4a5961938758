/**
 * The post-condition of every migration: `expected` answers as the serving primary, it is the only
 * consumer of the primary queue (the broker's own count), and no other instance of the service is alive
 * on the nodes involved. It settles for a few seconds (a killed process's connection takes a moment to
 * close) before it says what is wrong.
 */
import { sleep } from '@temporalio/workflow';
import type { BrokerActivities } from '../activities/types';
import type { NodeActivities, NodeInfo } from '../runtimes/types';
import type { InstanceStatus } from '../service/protocol';
import { errorText } from './migration-failures';

const TRIES = 6;

export type Served = { ok: true; status: InstanceStatus; consumers: number } | { ok: false; problems: string[] };

export interface Probes {
  /** One attempt each: the loop here is their retry. */
  probe: Pick<BrokerActivities, 'instanceStatus' | 'queueConsumers'>;
  onNode(node: NodeInfo): Pick<NodeActivities, 'listInstances'>;
}

export async function servedByOnly(
  expected: string,
  o: { service: string; queue: string; nodes: NodeInfo[]; controlReplyMs: number; inParallel?: boolean },
  { probe, onNode }: Probes,
): Promise<Served> {
  let problems: string[] = [];
  for (let attempt = 0; attempt < TRIES; attempt++) {
    if (attempt > 0) await sleep(1000);
    problems = [];
    const status = () =>
      probe.instanceStatus({ instanceId: expected, timeoutMs: o.controlReplyMs }).then(
        (s) => ({ ok: true as const, s }),
        (e: unknown) => ({ ok: false as const, why: errorText(e).message }),
      );
    const count = () => probe.queueConsumers({ queue: o.queue }).catch(() => -1);
    const lists = () =>
      Promise.all(
        o.nodes.map((n) =>
          onNode(n)
            .listInstances()
            .then((l) => l.filter((i) => i.service === o.service && i.alive && i.instanceId !== expected).map((i) => `${i.instanceId} on ${n.node}`))
            // An agent that does not answer cannot say; the broker's count above still does.
            .catch(() => [] as string[]),
        ),
      ).then((x) => x.flat());
    // The three looks are independent: together they cost one workflow task (migrations before asked in turn).
    const [answer, consumers, others] = o.inParallel ? await Promise.all([status(), count(), lists()]) : [await status(), await count(), await lists()];
    let st: InstanceStatus | null = null;
    if (answer.ok) {
      st = answer.s;
      if (st.role !== 'primary' || st.consuming !== 'primary' || st.fenced) problems.push(`${expected} answers as ${st.role}, consuming ${st.consuming}${st.fenced ? ', fenced' : ''}`);
    } else {
      problems.push(`${expected} does not answer (${answer.why})`);
    }
    if (consumers !== 1) problems.push(consumers < 0 ? `the broker did not report the consumers of ${o.queue}` : `${o.queue} has ${consumers} consumers`);
    if (others.length > 0) problems.push(`also alive: ${others.join(', ')}`);
    if (problems.length === 0) return { ok: true, status: st!, consumers };
  }
  return { ok: false, problems };
}
