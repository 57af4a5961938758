import { describe, expect, it } from 'vitest';
import { describeInputError } from '../../lib/migration';
import { DrainInputSchema, RebalanceInputSchema, planDrain, planRebalance, type InstanceLoad, type NodeLoad } from '../../lib/rebalance';

const NOW = 10_000_000;
const inst = (service: string, cpuPercent: number, extra: Partial<InstanceLoad> = {}): InstanceLoad => ({
  service,
  instanceId: `${service}-1`,
  cpuPercent,
  rssBytes: 0,
  queueDepth: 0,
  placedAt: 0,
  migrating: false,
  ...extra,
});
const node = (name: string, instances: InstanceLoad[], extra: Partial<NodeLoad> = {}): NodeLoad => ({ node: name, schedulable: true, capacity: 10, instances, ...extra });
const opts = { band: 0.2, minExcessPercent: 5, cooldownMs: 60_000, maxMigrations: 3 };

describe('rebalance policy', () => {
  it('moves services off an overloaded node until every node is within the band', () => {
    const plan = planRebalance([node('a', [inst('s1', 30), inst('s2', 25), inst('s3', 20)]), node('b', [])], opts, NOW);
    expect(plan.meanLoad).toBe(37.5);
    expect(plan.moves.map((m) => [m.service, m.from, m.to])).toEqual([['s1', 'a', 'b']]);
    expect(plan.moves[0].after).toEqual({ from: 45, to: 30 });
  });

  it('leaves a balanced cluster alone', () => {
    expect(planRebalance([node('a', [inst('s1', 20)]), node('b', [inst('s2', 18)])], opts, NOW).moves).toEqual([]);
  });

  it('respects cooldown, running migrations, capacity, unschedulable nodes and the cap on moves', () => {
    const recent = inst('s1', 40, { placedAt: NOW - 1000 });
    const busy = inst('s2', 40, { migrating: true });
    let plan = planRebalance([node('a', [recent, busy]), node('b', [])], opts, NOW);
    expect(plan.moves).toEqual([]);
    expect(plan.kept.map((k) => k.reason)).toEqual([expect.stringMatching(/cooldown/), 'being migrated']);
    plan = planRebalance([node('a', [inst('s1', 40), inst('s2', 40)]), node('b', [inst('x', 0)], { capacity: 1 }), node('c', [], { schedulable: false })], opts, NOW);
    expect(plan.moves).toEqual([]);
    expect(plan.kept[0].reason).toBe('no schedulable node with room');
    plan = planRebalance([node('a', [inst('s1', 30), inst('s2', 30), inst('s3', 30), inst('s4', 30)]), node('b', []), node('c', []), node('d', [])], { ...opts, maxMigrations: 2 }, NOW);
    expect(plan.moves.map((m) => m.to)).toEqual(['b', 'c']);
  });

  it('drains a node, spreading its services by load', () => {
    const { moves, stranded } = planDrain([node('a', [inst('s1', 10), inst('s2', 30), inst('s3', 20)]), node('b', [inst('x', 25)]), node('c', [])], 'a');
    expect(moves).toEqual([
      { service: 's2', to: 'c' },
      { service: 's3', to: 'b' },
      { service: 's1', to: 'c' },
    ]);
    expect(stranded).toEqual([]);
    expect(planDrain([node('a', [inst('s1', 10)]), node('b', [], { schedulable: false })], 'a').stranded).toEqual(['s1']);
  });

  it('validates inputs, naming the field and the fix', () => {
    const r = RebalanceInputSchema.safeParse({ band: -1, concurrency: 0, surprise: 1 });
    expect(r.success).toBe(false);
    if (!r.success) {
      const text = describeInputError('rebalance', r.error, { band: -1, concurrency: 0, surprise: 1 });
      expect(text).toMatch(/band: band must be ≥ 0, got -1/);
      expect(text).toMatch(/concurrency: concurrency must be at least 1, got 0/);
      expect(text).toMatch(/unknown field\(s\) surprise; remove them/);
    }
    const d = DrainInputSchema.safeParse({});
    expect(d.success).toBe(false);
    if (!d.success) expect(describeInputError('drainNode', d.error)).toMatch(/node: node is required, e.g. "node-a"/);
  });
});
