/**
 * rebalance, drainNode and setNodeSchedulable (workflows/rebalance.ts) against the fake cluster: the
 * load they read, the moves they plan (lib/rebalance.ts), the migrateService children they run, and what
 * they report when a child rolls back or fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DrainReport, RebalanceResult } from '../../../lib/rebalance';
import type { ClusterSpec } from './fake-runtime';
import { runFleet } from './harness';
import { WorkflowTestbed } from './temporal-env';

let bed: WorkflowTestbed;
beforeAll(async () => {
  bed = await WorkflowTestbed.start();
});
afterAll(async () => {
  await bed?.stop();
});

/** node-a carries 105 % CPU in three services, node-b and node-c nothing: mean 35 %, overloaded above 42 %. */
const OVERLOADED: ClusterSpec = {
  nodes: { 'node-a': {}, 'node-b': {}, 'node-c': {} },
  services: { s1: { node: 'node-a', cpuPercent: 40 }, s2: { node: 'node-a', cpuPercent: 35 }, s3: { node: 'node-a', cpuPercent: 30 } },
};

const placedOn = (fake: { placements: Map<string, { node: string }> }) => Object.fromEntries([...fake.placements].map(([s, p]) => [s, p.node]));

describe.concurrent('rebalance', () => {
  it('moves services off an overloaded node, each by a migrateService child, and reports every move', async () => {
    const { result, fake, workflowId } = await runFleet<RebalanceResult>(bed, 'rebalance', 'rebalance', { concurrency: 2, sampleMs: 100 }, { cluster: OVERLOADED });
    expect(result?.plan).toMatchObject({ meanLoad: 35, upperLoad: 42 });
    expect(result?.plan.moves.map((m) => [m.service, m.from, m.to])).toEqual([
      ['s1', 'node-a', 'node-b'],
      ['s2', 'node-a', 'node-c'],
    ]);
    expect(result?.outcomes).toEqual([
      expect.objectContaining({ service: 's1', from: 'node-a', to: 'node-b', workflowId: `${workflowId}-s1`, outcome: 'completed', downtimeMs: 30 }),
      expect.objectContaining({ service: 's2', from: 'node-a', to: 'node-c', workflowId: `${workflowId}-s2`, outcome: 'completed', downtimeMs: 30 }),
    ]);
    expect(placedOn(fake)).toEqual({ s1: 'node-b', s2: 'node-c', s3: 'node-a' });
    // Each child did a whole migration of its own service, and the load was read from every node.
    for (const s of ['s1', 's2']) expect(fake.steps(`${workflowId}-${s}`).at(-1)).toBe('releaseLock');
    expect(fake.callsOf('instanceLoads').map((c) => c.node).sort()).toEqual(['node-a', 'node-b', 'node-c']);
    expect(fake.locks.size).toBe(0);
  });

  it('dryRun: plans the same moves and changes nothing', async () => {
    const { result, fake } = await runFleet<RebalanceResult>(bed, 'rebalance-dry', 'rebalance', { dryRun: true, sampleMs: 100 }, { cluster: OVERLOADED });
    expect(result?.dryRun).toBe(true);
    expect(result?.plan.moves.map((m) => m.service)).toEqual(['s1', 's2']);
    expect(result?.outcomes).toEqual([]);
    expect(fake.steps()).toEqual([]);
  });

  it('a balanced cluster: nothing to move', async () => {
    const { result, fake } = await runFleet<RebalanceResult>(bed, 'rebalance-balanced', 'rebalance', { sampleMs: 100 }, {
      cluster: { nodes: { 'node-a': {}, 'node-b': {} }, services: { s1: { node: 'node-a', cpuPercent: 20 }, s2: { node: 'node-b', cpuPercent: 18 } } },
    });
    expect(result?.plan.moves).toEqual([]);
    expect(result?.outcomes).toEqual([]);
    expect(fake.steps()).toEqual([]);
  });

  it('a child that rolls back, and one that fails, are reported; the others move', async () => {
    const { result, fake } = await runFleet<RebalanceResult>(bed, 'rebalance-failing', 'rebalance', { concurrency: 1, sampleMs: 100 }, {
      cluster: OVERLOADED,
      prepare: (f) => {
        f.inject('restore', { action: 'fail', when: (input) => input.service === 's1', error: { type: 'RestoreFailed', message: 'injected: criu restore failed' } });
        f.inject('probeService', { action: 'fail', when: (input) => input.service === 's2', error: { type: 'NotMigratable', message: 'service: s2 does not answer ms2m control commands' } });
      },
    });
    expect(result?.outcomes).toEqual([
      expect.objectContaining({ service: 's1', outcome: 'rolled-back', error: 'migration of s1 rolled back after restore failed: injected: criu restore failed' }),
      expect.objectContaining({ service: 's2', outcome: 'failed', error: 'service: s2 does not answer ms2m control commands' }),
    ]);
    expect(placedOn(fake)).toEqual({ s1: 'node-a', s2: 'node-a', s3: 'node-a' });
    expect(fake.consumersOf('s1.primary').map((i) => i.instanceId)).toEqual(['s1-0']);
    expect(fake.locks.size).toBe(0);
  });

  it('a node that does not report its load takes nothing, and its services stay', async () => {
    const { result, fake } = await runFleet<RebalanceResult>(bed, 'rebalance-silent', 'rebalance', { sampleMs: 100 }, {
      cluster: { ...OVERLOADED, services: { ...OVERLOADED.services, x: { node: 'node-b', cpuPercent: 0 } } },
      prepare: (f) => f.inject('instanceLoads', { action: 'fail', node: 'node-b', error: { message: 'agent busy' } }),
    });
    expect(result?.plan.nodes.find((n) => n.node === 'node-b')?.schedulable).toBe(false);
    expect(result?.plan.moves.map((m) => m.to)).not.toContain('node-b');
    // Planned over node-a and node-c alone (mean 52.5 %, overloaded above 63 %): one move is enough.
    expect(result?.plan.moves.map((m) => [m.service, m.to])).toEqual([['s1', 'node-c']]);
    expect(placedOn(fake)).toEqual({ s1: 'node-c', s2: 'node-a', s3: 'node-a', x: 'node-b' });
  });

  it('InvalidInput: a bad input names the field', async () => {
    const { errorType, error } = await runFleet<RebalanceResult>(bed, 'rebalance-bad', 'rebalance', { concurrency: 0 }, { cluster: OVERLOADED });
    expect(errorType).toBe('InvalidInput');
    expect(error?.message).toMatch(/concurrency must be at least 1/);
  });
});

describe.concurrent('drainNode', () => {
  it('marks the node unschedulable, then moves every service off it, spread by load', async () => {
    const { result, fake, workflowId } = await runFleet<DrainReport>(bed, 'drain', 'drainNode', { node: 'node-a', concurrency: 3, sampleMs: 100 }, {
      cluster: {
        nodes: { 'node-a': {}, 'node-b': {}, 'node-c': {} },
        services: { s1: { node: 'node-a', cpuPercent: 40 }, s2: { node: 'node-a', cpuPercent: 30 }, s3: { node: 'node-a', cpuPercent: 10 }, x: { node: 'node-b', cpuPercent: 25 } },
      },
    });
    expect(fake.steps(workflowId)[0]).toBe('setNodeSchedulable');
    expect(fake.nodes.get('node-a')?.schedulable).toBe(false);
    expect(result).toMatchObject({ node: 'node-a', stranded: [], schedulable: false });
    expect(result?.services.map((s) => [s.service, s.from, s.to, s.outcome])).toEqual([
      ['s1', 'node-a', 'node-c', 'completed'],
      ['s2', 'node-a', 'node-b', 'completed'],
      ['s3', 'node-a', 'node-c', 'completed'],
    ]);
    expect(placedOn(fake)).toEqual({ s1: 'node-c', s2: 'node-b', s3: 'node-c', x: 'node-b' });
    expect(fake.instancesOf('s1').filter((i) => i.alive).map((i) => i.node)).toEqual(['node-c']);
  });

  it('services with nowhere to go are stranded and stay; a child that rolls back is reported', async () => {
    const { result, fake } = await runFleet<DrainReport>(bed, 'drain-stranded', 'drainNode', { node: 'node-a', sampleMs: 100 }, {
      cluster: {
        // node-b has room for one more; node-c takes nothing.
        nodes: { 'node-a': {}, 'node-b': { capacity: 2 }, 'node-c': { schedulable: false } },
        services: { s1: { node: 'node-a', cpuPercent: 40 }, s2: { node: 'node-a', cpuPercent: 30 }, x: { node: 'node-b', cpuPercent: 5 } },
      },
      prepare: (f) => f.failOnce('transfer', 'ImageMissing', { message: 'injected: the image went missing' }),
    });
    expect(result?.stranded).toEqual(['s2']);
    expect(result?.services).toEqual([
      expect.objectContaining({ service: 's1', from: 'node-a', to: 'node-b', outcome: 'rolled-back', error: 'migration of s1 rolled back after transfer failed: injected: the image went missing' }),
    ]);
    expect(placedOn(fake)).toMatchObject({ s1: 'node-a', s2: 'node-a' });
    expect(fake.nodes.get('node-a')?.schedulable).toBe(false);
  });

  it('setNodeSchedulable: marks a node, and refuses one that does not exist', async () => {
    const ok = await runFleet<void>(bed, 'schedulable', 'setNodeSchedulable', { node: 'node-b', schedulable: false });
    expect(ok.error).toBeUndefined();
    expect(ok.fake.nodes.get('node-b')?.schedulable).toBe(false);
    const bad = await runFleet<void>(bed, 'schedulable-bad', 'setNodeSchedulable', { node: 'node-q', schedulable: true });
    expect(bad.errorType).toBe('InvalidInput');
    expect(bad.error?.message).toBe('node: there is no node "node-q"');
  });
});
