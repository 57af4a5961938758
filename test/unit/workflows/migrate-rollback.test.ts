/**
 * migrateService against the fake cluster: a clean run of each strategy, and a failure in every phase of
 * each, with the exact rollback it must do (what is undone, in which order) and the post-condition after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityName, FakeCluster } from './fake-runtime';
import { AS_BEFORE, leftAsBefore, migrateInput, runMigration, sortedMiddle } from './harness';
import { WorkflowTestbed } from './temporal-env';

let bed: WorkflowTestbed;
beforeAll(async () => {
  bed = await WorkflowTestbed.start();
});
afterAll(async () => {
  await bed?.stop();
});


describe.concurrent('a migration that succeeds', () => {
  it('shadow: every phase in order, the copy serves alone, nothing of the migration is left', async () => {
    const { result, fake, report } = await runMigration(bed, 'ok-shadow', migrateInput('shadow'));
    expect(result?.outcome).toBe('completed');
    expect(report.phases.map((p) => p.phase)).toEqual(['validate', 'prepare', 'checkpoint', 'transfer', 'restore', 'replay', 'fence', 'finalize']);
    const steps = fake.steps();
    expect(sortedMiddle(steps, 8, 12)).toEqual([
      'acquireLock',
      'prepareReplay',
      'node-a.checkpoint',
      'node-a.transfer',
      'node-b.restore',
      'node-b.startReplay',
      'node-b.fenceAndSwap',
      'commitPlacement',
      'deleteQueue',
      'node-a.removeImage',
      'node-a.stopInstance',
      'node-b.removeImage',
      'releaseLock',
    ]);
    const copy = fake.copyOf('game')!;
    expect(fake.placements.get('game')).toMatchObject({ node: 'node-b', instanceId: copy.instanceId });
    expect(fake.consumersOf('game.primary').map((i) => i.instanceId)).toEqual([copy.instanceId]);
    expect(fake.instance('game-0').alive).toBe(false);
    expect(fake.queues.size).toBe(0);
    expect(fake.locks.size).toBe(0);
    expect(report.accounting.handoff).toBe('exact');
    expect(report.stateMatch).toBe(true);
    expect(report.sourceDigest).toBe(report.targetDigest);
    expect(report.downtimeMs).toBe(30);
    expect(report.replay).toMatchObject({ endedBy: 'threshold', thresholdReached: true, finalLag: 4 });
    expect(report.accounting.serving).toEqual({ instance: copy.instanceId, position: copy.applied, consumers: 1 });
    expect(report.accounting.copy?.afterSwap).not.toBeNull();
  });

  it('stop-and-copy: the source is fenced first, no replay, and the copy takes over at its position', async () => {
    const { result, fake, report } = await runMigration(bed, 'ok-sac', migrateInput('stop-and-copy'));
    expect(result?.outcome).toBe('completed');
    expect(report.phases.map((p) => p.phase)).toEqual(['validate', 'prepare', 'checkpoint', 'transfer', 'restore', 'fence', 'finalize']);
    expect(sortedMiddle(fake.steps(), 7, 10)).toEqual([
      'acquireLock',
      'fenceSource',
      'node-a.checkpoint',
      'node-a.transfer',
      'node-b.restore',
      'node-b.fenceAndSwap',
      'commitPlacement',
      'node-a.removeImage',
      'node-a.stopInstance',
      'node-b.removeImage',
      'releaseLock',
    ]);
    expect(fake.callsOf('fenceAndSwap')[0].input.fenced).toMatchObject({ instanceId: 'game-0', fenced: true, applied: 1000 });
    expect(fake.callsOf('prepareReplay')).toEqual([]);
    expect(fake.copyOf('game')).toMatchObject({ role: 'primary', consuming: 'primary', applied: 1000 });
    expect(report.accounting.handoff).toBe('exact');
    expect(report.replay.endedBy).toBe('none');
  });
});

interface PhaseFailure {
  phase: string;
  /** The activity that fails, and how. */
  activity: ActivityName;
  node?: string;
  type: string;
  /** For a failure that comes after the source was fenced (a catch-up that timed out). */
  before?: (fake: FakeCluster, input: any) => void;
  /** The calls that changed something, the failed one marked with `!`. */
  steps: string[];
}

const fenceTheSource = (fake: FakeCluster, input: { source: string }) => {
  const src = fake.instance(input.source);
  src.fenced = true;
  src.consuming = 'none';
};

const SHADOW: PhaseFailure[] = [
  { phase: 'prepare', activity: 'prepareReplay', type: 'PrepareTimeout', steps: ['acquireLock', 'prepareReplay!', 'unfence', 'deleteQueue', 'releaseLock'] },
  {
    phase: 'checkpoint',
    activity: 'checkpoint',
    node: 'node-a',
    type: 'InstanceExited',
    steps: ['acquireLock', 'prepareReplay', 'node-a.checkpoint!', 'unfence', 'deleteQueue', 'node-a.removeImage', 'releaseLock'],
  },
  {
    phase: 'transfer',
    activity: 'transfer',
    node: 'node-a',
    type: 'ImageMissing',
    steps: ['acquireLock', 'prepareReplay', 'node-a.checkpoint', 'node-a.transfer!', 'unfence', 'deleteQueue', 'node-b.removeImage', 'node-a.removeImage', 'releaseLock'],
  },
  {
    phase: 'restore',
    activity: 'restore',
    node: 'node-b',
    type: 'RestoreFailed',
    steps: [
      'acquireLock',
      'prepareReplay',
      'node-a.checkpoint',
      'node-a.transfer',
      'node-b.restore!',
      'unfence',
      'node-b.stopInstance',
      'deleteQueue',
      'node-b.removeImage',
      'node-a.removeImage',
      'releaseLock',
    ],
  },
  {
    phase: 'replay',
    activity: 'startReplay',
    type: 'ControlRefused',
    steps: [
      'acquireLock',
      'prepareReplay',
      'node-a.checkpoint',
      'node-a.transfer',
      'node-b.restore',
      'node-b.startReplay!',
      'unfence',
      'node-b.stopInstance',
      'deleteQueue',
      'node-b.removeImage',
      'node-a.removeImage',
      'releaseLock',
    ],
  },
  {
    phase: 'fence',
    activity: 'fenceAndSwap',
    type: 'CatchUpTimeout',
    before: fenceTheSource,
    steps: [
      'acquireLock',
      'prepareReplay',
      'node-a.checkpoint',
      'node-a.transfer',
      'node-b.restore',
      'node-b.startReplay',
      'node-b.fenceAndSwap!',
      // The copy replays: the source is unfenced first, its answer proving it lives (model finding F2).
      'unfence',
      'node-b.stopInstance',
      'deleteQueue',
      'node-b.removeImage',
      'node-a.removeImage',
      'releaseLock',
    ],
  },
];

const STOP_AND_COPY: PhaseFailure[] = [
  { phase: 'prepare', activity: 'fenceSource', type: 'ControlRefused', steps: ['acquireLock', 'fenceSource!', 'unfence', 'releaseLock'] },
  {
    phase: 'checkpoint',
    activity: 'checkpoint',
    node: 'node-a',
    type: 'InstanceExited',
    steps: ['acquireLock', 'fenceSource', 'node-a.checkpoint!', 'unfence', 'node-a.removeImage', 'releaseLock'],
  },
  {
    phase: 'transfer',
    activity: 'transfer',
    node: 'node-a',
    type: 'ImageMissing',
    steps: ['acquireLock', 'fenceSource', 'node-a.checkpoint', 'node-a.transfer!', 'unfence', 'node-b.removeImage', 'node-a.removeImage', 'releaseLock'],
  },
  {
    phase: 'restore',
    activity: 'restore',
    node: 'node-b',
    type: 'RestoreFailed',
    steps: ['acquireLock', 'fenceSource', 'node-a.checkpoint', 'node-a.transfer', 'node-b.restore!', 'node-b.stopInstance', 'unfence', 'node-b.removeImage', 'node-a.removeImage', 'releaseLock'],
  },
  {
    phase: 'fence',
    activity: 'fenceAndSwap',
    type: 'CatchUpTimeout',
    steps: [
      'acquireLock',
      'fenceSource',
      'node-a.checkpoint',
      'node-a.transfer',
      'node-b.restore',
      'node-b.fenceAndSwap!',
      'node-b.stopInstance',
      'unfence',
      'node-b.removeImage',
      'node-a.removeImage',
      'releaseLock',
    ],
  },
];

describe.concurrent.each([
  ['shadow', SHADOW],
  ['stop-and-copy', STOP_AND_COPY],
] as const)('%s: a failure rolls back exactly what was done', (strategy, cases) => {
  it('validate: a source that does not speak the protocol is refused; only the lock was taken, and it is released', async () => {
    const { error, errorType, fake, report } = await runMigration(bed, `validate-${strategy}`, migrateInput(strategy), {
      prepare: (f) => f.failOnce('probeService', 'NotMigratable', { message: 'service: game does not answer ms2m control commands' }),
    });
    expect(errorType).toBe('NotMigratable');
    expect(error?.message).toBe('service: game does not answer ms2m control commands');
    expect(fake.steps()).toEqual(['acquireLock', 'releaseLock']);
    expect(report).toMatchObject({ outcome: 'rolled-back', failure: { phase: 'validate', type: 'NotMigratable' } });
    // Nothing changed, and a source that never answered is not held to the post-condition.
    expect(fake.callsOf('queueConsumers')).toEqual([]);
    expect(report.accounting.serving).toBeNull();
    expect(leftAsBefore(fake)).toEqual(AS_BEFORE);
  });

  it.each(cases.map((c) => [c.phase, c] as const))('%s', async (phase, c) => {
    const { error, errorType, fake, report } = await runMigration(bed, `${phase}-${strategy}`, migrateInput(strategy), {
      prepare: (f) => f.inject(c.activity, { action: 'fail', node: c.node, before: c.before, times: 1, error: { type: c.type, message: `injected: ${c.activity} failed` } }),
    });
    expect(errorType).toBe('MigrationRolledBack');
    expect(error?.message).toBe(`migration of game rolled back after ${phase} failed: injected: ${c.activity} failed`);
    expect(fake.steps()).toEqual(c.steps);
    expect(report).toMatchObject({ outcome: 'rolled-back', failure: { phase, type: c.type, message: `injected: ${c.activity} failed` } });
    expect(report.phases.map((p) => p.phase).at(-1)).toBe(phase);
    // The rollback undid everything: the source serves alone, unfenced, and no copy, image, replay queue or lock is left.
    expect(leftAsBefore(fake)).toEqual(AS_BEFORE);
    // The post-condition ran on the source and found it serving alone.
    expect(report.accounting.serving).toEqual({ instance: 'game-0', position: fake.instance('game-0').applied, consumers: 1 });
    expect(report.notServing).toBeUndefined();
    expect(report.accounting.handoff).toBe('none');
  });
});
