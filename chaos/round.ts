/** One chaos round: a migration of an example service under load with one fault applied, then judged. */
import type { ClusterHandle } from '../runtimes/types';
import { runScenario, undeploy, type ScenarioResult } from '../cli/scenario';
import { workload, type WorkloadName } from '../cli/workloads';
import { disarmAllFailpoints } from '../lib/failpoints';
import type { Fault } from './faults';
import type { Mechanisms } from '../lib/migration';
import { violations } from './verdict';

export interface RoundResult {
  fault: Fault;
  service: string;
  workload: WorkloadName;
  /** How the image moved: the fault's own, else the drawn ones. */
  mechanisms: Mechanisms;
  result: ScenarioResult;
  violations: string[];
  /** What happened, with times: the fault's own notes and the scenario's. */
  log: string[];
}

export async function runRound(
  cluster: ClusterHandle,
  fault: Fault,
  service: string,
  opts: { rate?: number; workload?: WorkloadName; mechanisms?: Mechanisms } = {},
): Promise<RoundResult> {
  const name = opts.workload ?? 'game';
  const mechanisms: Mechanisms = { transfer: 'files', lazy: false, ...opts.mechanisms, ...fault.scenario?.mechanisms };
  const lines: string[] = [];
  const log = (l: string) => lines.push(`${new Date().toISOString()} ${l}`);
  try {
    const result = await runScenario(cluster, {
      service,
      workload: name,
      from: 'node-a',
      to: 'node-b',
      strategy: fault.strategy,
      rate: opts.rate ?? 40,
      warmupMs: 1000,
      settleMs: 1000,
      keep: true,
      // Shorter than the defaults, so that a killed worker is noticed within seconds rather than tens of them.
      input: { timeouts: { heartbeatMs: 4000, controlReplyMs: 3000 } },
      ...fault.scenario,
      mechanisms,
      log,
      duringMigration: (handle) => fault.inject({ cluster, handle, service, from: 'node-a', to: 'node-b', log }),
    });
    const found = await violations(cluster, fault, service, result, workload(name).topology(service).queue);
    await undeploy(cluster, service).catch((err) => log(`undeploy failed: ${(err as Error).message}`));
    return { fault, service, workload: name, mechanisms, result, violations: found, log: lines };
  } finally {
    disarmAllFailpoints(cluster.opts.home);
  }
}
