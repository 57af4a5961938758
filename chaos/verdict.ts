/**
 * What every faulted migration must end in: migrated or rolled back (as the fault allows), nothing lost
 * or applied twice, no output emitted twice, exactly one live instance of the service, the one the
 * cluster places, serving the primary queue alone (the broker's own consumer count) with the state
 * rebuilt from the producers' log (for the ledger: every instance's apply sequence equal, message by
 * message), the workflow's own post-condition and accounting agreeing, and no migration leftovers
 * (replay queue, lock).
 */
import * as amqp from 'amqplib';
import type { ClusterHandle } from '../runtimes/types';
import type { ScenarioResult } from '../cli/scenario';
import { loadConfig } from '../lib/config';
import { lockHolder } from '../activities/lock';
import { ControlClient } from '../service/control-client';
import { replayQueueName } from '../service/names';
import type { Fault } from './faults';

/** The broker's own view of a queue: its consumers, or null when it does not exist. */
async function queueConsumers(queue: string): Promise<number | null> {
  const conn = await amqp.connect(loadConfig().amqpUrl);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    return await ch.checkQueue(queue).then(
      (q) => q.consumerCount,
      () => null,
    );
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Every way the round broke the guarantees; empty when it held them. */
export async function violations(cluster: ClusterHandle, fault: Fault, service: string, r: ScenarioResult, primaryQueue: string): Promise<string[]> {
  const out: string[] = [];
  const { report } = r;
  const v = report.verification!;
  if (!fault.outcomes.includes(report.outcome)) out.push(`outcome ${report.outcome}, expected ${fault.outcomes.join(' or ')}${report.failure ? ` (${report.failure.type}: ${report.failure.message})` : ''}`);
  if (r.cancelled !== Boolean(fault.cancels)) out.push(r.cancelled ? 'the workflow ended cancelled' : 'the workflow was expected to end cancelled');
  if (v.lost !== 0) out.push(`${v.lost} messages lost`);
  if (v.duplicated !== 0) out.push(`${v.duplicated} messages applied twice`);
  if (v.duplicateOutputs !== 0) out.push(`${v.duplicateOutputs} outputs emitted twice`);
  if (v.processed !== v.published) out.push(`${v.processed} of ${v.published} messages processed`);
  if (!v.finalStateMatchesProducers) out.push("final state differs from the one rebuilt from the producers' log");
  for (const p of v.order?.problems ?? []) out.push(`order: ${p}`);
  if (report.notServing) out.push(`the workflow's post-condition failed: ${report.notServing}`);
  const handoffs = report.outcome === 'completed' ? ['exact', 'adopted'] : ['none', 'refused'];
  if (!handoffs.includes(report.accounting.handoff)) out.push(`handoff ${report.accounting.handoff} after ${report.outcome}`);
  // A migration that ended in validate before the source answered changed nothing and runs no post-condition
  // (the service may not speak the protocol); the checks below still look at the service itself.
  const postConditionRan = report.accounting.serving !== null || report.failure?.phase !== 'validate';
  if (postConditionRan && report.accounting.serving?.instance !== r.placed) out.push(`the workflow's post-condition names ${report.accounting.serving?.instance ?? 'no serving instance'}, the placement ${r.placed}`);
  const consumers = await queueConsumers(primaryQueue);
  if (consumers !== 1) out.push(`${primaryQueue} has ${consumers ?? 'no queue and no'} consumers`);
  if (r.live.length !== 1 || r.live[0] !== r.placed) out.push(`live instances ${JSON.stringify(r.live)}, placement names ${r.placed}`);
  const control = await ControlClient.connect(loadConfig().amqpUrl, 'ms2m-verdict');
  try {
    const st = await control.command(r.placed, { kind: 'status', digest: false }, 10_000);
    if (st.role !== 'primary' || st.consuming !== 'primary' || st.fenced) out.push(`${r.placed} is not serving: role ${st.role}, consuming ${st.consuming}, fenced ${st.fenced}`);
  } catch (err) {
    out.push(`${r.placed} does not answer: ${(err as Error).message}`);
  } finally {
    await control.close();
  }
  if ((await queueConsumers(replayQueueName(service, report.migrationId))) !== null) out.push('the replay queue was left behind');
  const lock = await lockHolder(cluster.client, service);
  if (lock) out.push(`the migration lock is still held by ${lock.workflowId}`);
  return out;
}
