/**
 * rebalance, drainNode, evacuate and setNodeSchedulable: the fleet-level workflows. rebalance, drainNode and evacuate
 * read the cluster's load through activities, plan with the policy in lib/rebalance.ts, and move services
 * by starting migrateService child workflows a few at a time. Each migration keeps its own guarantees;
 * these workflows only decide where services go and report what happened.
 */
import {
  ApplicationFailure,
  ChildWorkflowFailure,
  ParentClosePolicy,
  executeChild,
  log,
  setCurrentDetails,
  workflowInfo,
} from '@temporalio/workflow';
import type { MigrationReport, Strategy } from '../lib/migration';
import {
  DrainInputSchema,
  EvacuateInputSchema,
  NodeSchedulableInputSchema,
  RebalanceInputSchema,
  planDrain,
  planRebalance,
  strategyFor,
  type DrainInput,
  type EvacuateInput,
  type DrainReport,
  type MoveOutcome,
  type NodeLoad,
  type NodeSchedulableInput,
  type RebalanceInput,
  type RebalanceResult,
} from '../lib/rebalance';
import { parseInput } from './input';
import { cluster, brokerLocal, lock, onNode } from './activity-proxies';
import { migrateService } from './migrate-service';
import { FAILURE } from '../lib/contracts';

/** Nodes, the services on them with their CPU, memory and queue depth, and which are being migrated. */
async function clusterLoad(sampleMs: number): Promise<NodeLoad[]> {
  const [nodes, placements] = await Promise.all([cluster.listNodes(), cluster.listPlacements()]);
  const migrating = await lock.lockedServices({ services: placements.map((p) => p.service) });
  const depths = await brokerLocal.queueDepths({ queues: placements.map((p) => p.spec.primaryQueue) });
  return Promise.all(
    nodes.map(async (n) => {
      let loads: Awaited<ReturnType<ReturnType<typeof onNode>['instanceLoads']>> = [];
      let reachable = true;
      try {
        loads = await onNode(n).instanceLoads({ sampleMs });
      } catch (err) {
        // A node that does not answer takes nothing new; its services are left where they are.
        log.warn(`node ${n.node} did not report its load`, { error: String(err) });
        reachable = false;
      }
      return {
        node: n.node,
        schedulable: n.schedulable && reachable,
        capacity: n.capacity,
        instances: placements
          .filter((p) => p.node === n.node)
          .map((p) => {
            const l = loads.find((x) => x.instanceId === p.instanceId);
            return {
              service: p.service,
              instanceId: p.instanceId,
              cpuPercent: l?.cpuPercent ?? 0,
              rssBytes: l?.rssBytes ?? 0,
              queueDepth: depths[p.spec.primaryQueue] ?? 0,
              placedAt: p.updatedAt,
              migrating: migrating.includes(p.service) || !reachable,
              ...(p.keepsName ? { keepsName: true } : {}),
            };
          }),
      };
    }),
  );
}

/** The services of `state` that keep their names (a StatefulSet's pod): each moves by a name-keeping strategy. */
const keepingNames = (state: NodeLoad[]): Set<string> => new Set(state.flatMap((n) => n.instances.filter((i) => i.keepsName).map((i) => i.service)));

/** Runs the moves as migrateService children, `limit` at a time, and reports each one's outcome. */
async function move(
  moves: Array<{ service: string; from: string; to: string }>,
  strategy: Strategy,
  limit: number,
  keepsName: Set<string>,
  show: (done: MoveOutcome[]) => void,
): Promise<MoveOutcome[]> {
  const { workflowId, taskQueue } = workflowInfo();
  const outcomes: MoveOutcome[] = [];
  let next = 0;
  const one = async (m: (typeof moves)[number]): Promise<MoveOutcome> => {
    const childId = `${workflowId}-${m.service}`;
    try {
      const r = (await executeChild(migrateService, {
        workflowId: childId,
        taskQueue,
        args: [{ service: m.service, targetNode: m.to, strategy: strategyFor(strategy, keepsName.has(m.service)) }],
        // Cancelling the parent asks each running migration to roll back cleanly.
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
      })) as MigrationReport;
      return { ...m, workflowId: childId, outcome: r.outcome, totalMs: r.totalMs, downtimeMs: r.downtimeMs };
    } catch (err) {
      const cause = err instanceof ChildWorkflowFailure ? err.cause : undefined;
      if (cause instanceof ApplicationFailure && cause.type === FAILURE.MigrationRolledBack) {
        const r = cause.details?.[0] as MigrationReport | undefined;
        return { ...m, workflowId: childId, outcome: 'rolled-back', totalMs: r?.totalMs, error: cause.message };
      }
      return { ...m, workflowId: childId, outcome: 'failed', error: (cause ?? (err as Error)).message };
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(limit, moves.length) }, async () => {
      while (next < moves.length) {
        const m = moves[next++];
        outcomes.push(await one(m));
        show(outcomes);
      }
    }),
  );
  return moves.map((m) => outcomes.find((o) => o.service === m.service)!);
}

const table = (outcomes: MoveOutcome[]) =>
  outcomes.map((o) => `- ${o.service}: ${o.from} → ${o.to} **${o.outcome}**${o.downtimeMs !== undefined ? ` (downtime ${o.downtimeMs} ms)` : ''}`).join('\n');

export async function rebalance(rawInput: RebalanceInput = {}): Promise<RebalanceResult> {
  const input = parseInput('rebalance', RebalanceInputSchema, rawInput);
  const state = await clusterLoad(input.sampleMs);
  const plan = planRebalance(state, input, Date.now());
  const summary =
    `**rebalance** mean load ${plan.meanLoad} % CPU, overloaded above ${plan.upperLoad} %\n\n` +
    plan.nodes.map((n) => `- ${n.node}: ${n.load} % in ${n.instances}/${n.capacity}${n.schedulable ? '' : ' (unschedulable)'}`).join('\n') +
    `\n\nplanned: ${plan.moves.length ? plan.moves.map((m) => `${m.service} ${m.from} → ${m.to}`).join(', ') : 'nothing to move'}`;
  setCurrentDetails(summary + (input.dryRun ? '\n\n(dry run)' : ''));
  if (input.dryRun || plan.moves.length === 0) return { dryRun: input.dryRun, plan, outcomes: [] };
  const outcomes = await move(plan.moves, input.strategy, input.concurrency, keepingNames(state), (done) => setCurrentDetails(`${summary}\n\n${table(done)}`));
  return { dryRun: false, plan, outcomes };
}

export async function drainNode(rawInput: DrainInput): Promise<DrainReport> {
  const input = parseInput('drainNode', DrainInputSchema, rawInput);
  const startedAt = Date.now();
  // Unschedulable first: nothing new lands on the node while it empties, and it stays so afterwards.
  await cluster.setNodeSchedulable({ node: input.node, schedulable: false });
  const state = await clusterLoad(input.sampleMs);
  const { moves, stranded } = planDrain(state, input.node);
  const head = `**drain ${input.node}**: ${moves.length} service(s) to move${stranded.length ? `, ${stranded.length} with nowhere to go: ${stranded.join(', ')}` : ''}`;
  setCurrentDetails(head);
  const services = await move(
    moves.map((m) => ({ ...m, from: input.node })),
    input.strategy,
    input.concurrency,
    keepingNames(state),
    (done) => setCurrentDetails(`${head}\n\n${table(done)}`),
  );
  return { node: input.node, startedAt, endedAt: Date.now(), services, stranded, schedulable: false };
}

/**
 * One service off a node, planned and moved as drainNode moves each of its services. The eviction
 * webhook starts one for each pod that `kubectl drain` (or anyone through the Eviction API) evicts.
 */
export async function evacuate(rawInput: EvacuateInput): Promise<MoveOutcome> {
  const input = parseInput('evacuate', EvacuateInputSchema, rawInput);
  const state = await clusterLoad(input.sampleMs);
  const m = planDrain(state, input.node).moves.find((x) => x.service === input.service);
  if (!m) {
    const here = state.some((n) => n.node === input.node && n.instances.some((i) => i.service === input.service));
    throw ApplicationFailure.nonRetryable(
      here ? `service: ${input.service} has nowhere to go off ${input.node}: no other schedulable node has room` : `service: ${input.service} does not run on ${input.node}`,
      FAILURE.InvalidInput,
    );
  }
  const head = `**evacuate ${input.service}** off ${input.node}`;
  setCurrentDetails(head);
  const [outcome] = await move([{ ...m, from: input.node }], input.strategy, 1, keepingNames(state), (done) => setCurrentDetails(`${head}\n\n${table(done)}`));
  return outcome;
}

export async function setNodeSchedulable(rawInput: NodeSchedulableInput): Promise<void> {
  const input = parseInput('setNodeSchedulable', NodeSchedulableInputSchema, rawInput);
  await cluster.setNodeSchedulable(input);
}
