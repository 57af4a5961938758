/**
 * Rebalancing and draining: inputs, the cluster's load as the workflows see it, and the placement policy.
 * Pure and free of Node APIs: the workflow sandbox plans with it, and the tests check it directly.
 *
 * Policy. A node's load is the CPU its service instances use (percent of one core, summed). Nodes marked
 * unschedulable neither receive services nor count towards the mean. A node is overloaded when its load
 * exceeds the mean of the schedulable nodes by more than `band` (a fraction of the mean) and by more than
 * `minExcessPercent`. Moves are chosen greedily: from the most overloaded node, the service whose move to
 * the least loaded node with room (fewer instances than its capacity) lowers the larger of the two loads
 * the most. A service migrated within `cooldownMs`, or being migrated, stays. At most `maxMigrations`
 * moves per run; they execute `concurrency` at a time.
 */
import { z } from 'zod';
import { countField, msField, nameField, objectMessages } from './input-fields';
import { STRATEGIES, type Strategy } from './migration';

const strategy = z.enum(STRATEGIES, { errorMap: () => ({ message: `strategy must be one of ${STRATEGIES.join(', ')}` }) }).default('shadow');
const concurrency = z
  .number({ invalid_type_error: 'concurrency must be a number of migrations' })
  .int('concurrency must be a whole number')
  .min(1, 'concurrency must be at least 1')
  .max(10, 'concurrency must be at most 10')
  .default(1);

export const RebalanceInputSchema = z
  .object(
    {
    /** Return the plan without moving anything. */
    dryRun: z.boolean({ invalid_type_error: 'dryRun must be true or false' }).default(false),
    band: z.number({ invalid_type_error: 'band must be a fraction of the mean load, e.g. 0.2' }).min(0, 'band must be ≥ 0').max(5, 'band must be ≤ 5').default(0.2),
    minExcessPercent: z
      .number({ invalid_type_error: 'minExcessPercent must be a CPU percentage, e.g. 5' })
      .min(0, 'minExcessPercent must be ≥ 0')
      .max(1000, 'minExcessPercent must be ≤ 1000')
      .default(5),
    cooldownMs: msField('cooldownMs', 0, 7 * 24 * 3_600_000, 600_000),
    maxMigrations: countField('maxMigrations', 'migrations', 0, 100, 3),
    concurrency,
    strategy,
    /** How long CPU use is sampled on each node. */
    sampleMs: msField('sampleMs', 100, 60_000, 1000),
    },
    objectMessages('the input', '{"dryRun": true}'),
  )
  .strict();
export type RebalanceInput = z.input<typeof RebalanceInputSchema>;
export type RebalanceRequest = z.output<typeof RebalanceInputSchema>;

export const DrainInputSchema = z
  .object(
    { node: nameField('node', 'node-a'), concurrency, strategy, sampleMs: msField('sampleMs', 100, 60_000, 1000) },
    objectMessages('the input', '{"node": "node-a"}'),
  )
  .strict();
export type DrainInput = z.input<typeof DrainInputSchema>;
export type DrainRequest = z.output<typeof DrainInputSchema>;

/** One service off a node, as drainNode moves each (the eviction webhook starts one per evicted pod). */
export const EvacuateInputSchema = z
  .object(
    { service: nameField('service', 'orders'), node: nameField('node', 'node-a'), strategy, sampleMs: msField('sampleMs', 100, 60_000, 1000) },
    objectMessages('the input', '{"service": "orders", "node": "node-a"}'),
  )
  .strict();
export type EvacuateInput = z.input<typeof EvacuateInputSchema>;

/**
 * The strategy a service moves by when a fleet workflow asks for `asked`: a StatefulSet's pod (one that
 * keeps its name) by the name-keeping counterpart (shadow → shadow-swap, stop-and-copy → sequential),
 * anything else by the plain one.
 */
export function strategyFor(asked: Strategy, keepsName: boolean): Strategy {
  const pairs: Array<[Strategy, Strategy]> = [['shadow', 'shadow-swap'], ['stop-and-copy', 'sequential']];
  const pair = pairs.find((p) => p.includes(asked))!;
  return pair[keepsName ? 1 : 0];
}

export interface InstanceLoad {
  service: string;
  instanceId: string;
  /** Percent of one core over the sampling window. */
  cpuPercent: number;
  rssBytes: number;
  /** Messages waiting in the service's primary queue (ready + unacknowledged). */
  queueDepth: number;
  /** When the service was last placed (deployed or migrated). */
  placedAt: number;
  /** A migration holds the service's lock. */
  migrating: boolean;
  /** Its controller knows it by name (a StatefulSet's pod): it moves by a name-keeping strategy. */
  keepsName?: boolean;
}

export interface NodeLoad {
  node: string;
  schedulable: boolean;
  /** How many instances the node takes. */
  capacity: number;
  instances: InstanceLoad[];
}

export interface PlannedMove {
  service: string;
  from: string;
  to: string;
  cpuPercent: number;
  /** Loads of the two nodes before and after this move (CPU %). */
  before: { from: number; to: number };
  after: { from: number; to: number };
}

export interface RebalancePlan {
  at: number;
  meanLoad: number;
  /** Loads above this are overloaded. */
  upperLoad: number;
  nodes: Array<{ node: string; schedulable: boolean; load: number; instances: number; capacity: number }>;
  moves: PlannedMove[];
  /** Services on overloaded nodes that stay, and why. */
  kept: Array<{ service: string; node: string; reason: string }>;
}

export const nodeLoad = (n: NodeLoad): number => n.instances.reduce((a, i) => a + i.cpuPercent, 0);

const round1 = (x: number) => Math.round(x * 10) / 10;

/** The least loaded schedulable node with room for one more instance, other than `except`. */
export function pickTarget(nodes: NodeLoad[], except: string): NodeLoad | null {
  const room = nodes.filter((n) => n.schedulable && n.node !== except && n.instances.length < n.capacity);
  room.sort((a, b) => nodeLoad(a) - nodeLoad(b) || a.instances.length - b.instances.length || a.node.localeCompare(b.node));
  return room[0] ?? null;
}

export function planRebalance(
  state: NodeLoad[],
  o: Pick<RebalanceRequest, 'band' | 'minExcessPercent' | 'cooldownMs' | 'maxMigrations'>,
  now: number,
): RebalancePlan {
  // Planned on a copy: each chosen move changes the loads the next choice sees.
  const nodes: NodeLoad[] = state.map((n) => ({ ...n, instances: [...n.instances] }));
  const schedulable = nodes.filter((n) => n.schedulable);
  const meanLoad = schedulable.length ? schedulable.reduce((a, n) => a + nodeLoad(n), 0) / schedulable.length : 0;
  const upperLoad = Math.max(meanLoad * (1 + o.band), meanLoad + o.minExcessPercent);
  const plan: RebalancePlan = {
    at: now,
    meanLoad: round1(meanLoad),
    upperLoad: round1(upperLoad),
    nodes: state.map((n) => ({ node: n.node, schedulable: n.schedulable, load: round1(nodeLoad(n)), instances: n.instances.length, capacity: n.capacity })),
    moves: [],
    kept: [],
  };
  const keptSeen = new Set<string>();
  const keep = (service: string, node: string, reason: string) => {
    if (keptSeen.has(service)) return;
    keptSeen.add(service);
    plan.kept.push({ service, node, reason });
  };
  while (plan.moves.length < o.maxMigrations) {
    const over = schedulable.filter((n) => nodeLoad(n) > upperLoad).sort((a, b) => nodeLoad(b) - nodeLoad(a));
    let moved = false;
    for (const from of over) {
      const target = pickTarget(nodes, from.node);
      if (!target) {
        for (const i of from.instances) keep(i.service, from.node, 'no schedulable node with room');
        continue;
      }
      const fromLoad = nodeLoad(from);
      const toLoad = nodeLoad(target);
      let best: InstanceLoad | null = null;
      let bestPeak = fromLoad;
      for (const i of from.instances) {
        if (i.migrating) {
          keep(i.service, from.node, 'being migrated');
          continue;
        }
        if (now - i.placedAt < o.cooldownMs) {
          keep(i.service, from.node, `moved ${Math.round((now - i.placedAt) / 1000)} s ago (cooldown ${Math.round(o.cooldownMs / 1000)} s)`);
          continue;
        }
        const peak = Math.max(fromLoad - i.cpuPercent, toLoad + i.cpuPercent);
        if (peak < bestPeak) {
          best = i;
          bestPeak = peak;
        }
      }
      if (!best) continue;
      from.instances = from.instances.filter((i) => i !== best);
      target.instances = [...target.instances, best];
      plan.moves.push({
        service: best.service,
        from: from.node,
        to: target.node,
        cpuPercent: round1(best.cpuPercent),
        before: { from: round1(fromLoad), to: round1(toLoad) },
        after: { from: round1(fromLoad - best.cpuPercent), to: round1(toLoad + best.cpuPercent) },
      });
      moved = true;
      break;
    }
    if (!moved) break;
  }
  return plan;
}

/** Targets for every service on a node being drained, spreading them by load (the same choice as rebalancing). */
export function planDrain(state: NodeLoad[], node: string): { moves: Array<{ service: string; to: string }>; stranded: string[] } {
  const nodes: NodeLoad[] = state.map((n) => ({ ...n, schedulable: n.schedulable && n.node !== node, instances: [...n.instances] }));
  const leaving = [...(nodes.find((n) => n.node === node)?.instances ?? [])].sort((a, b) => b.cpuPercent - a.cpuPercent);
  const moves: Array<{ service: string; to: string }> = [];
  const stranded: string[] = [];
  for (const i of leaving) {
    const target = pickTarget(nodes, node);
    if (!target) {
      stranded.push(i.service);
      continue;
    }
    target.instances.push(i);
    moves.push({ service: i.service, to: target.node });
  }
  return { moves, stranded };
}

export interface MoveOutcome {
  service: string;
  from: string;
  to: string;
  /** The child migrateService workflow. */
  workflowId: string;
  outcome: 'completed' | 'rolled-back' | 'failed';
  totalMs?: number;
  downtimeMs?: number;
  error?: string;
}

export interface RebalanceResult {
  dryRun: boolean;
  plan: RebalancePlan;
  outcomes: MoveOutcome[];
}

export interface DrainReport {
  node: string;
  startedAt: number;
  endedAt: number;
  /** One entry per service that was on the node. */
  services: MoveOutcome[];
  /** Services with nowhere to go (no schedulable node with room); they stay on the node. */
  stranded: string[];
  /** The node stays unschedulable until it is marked schedulable again. */
  schedulable: false;
}

export const NodeSchedulableInputSchema = z
  .object(
    {
      node: nameField('node', 'node-a'),
      schedulable: z.boolean({ required_error: 'schedulable is required (true or false)', invalid_type_error: 'schedulable must be true or false' }),
    },
    objectMessages('the input', '{"node": "node-a", "schedulable": true}'),
  )
  .strict();
export type NodeSchedulableInput = z.input<typeof NodeSchedulableInputSchema>;
