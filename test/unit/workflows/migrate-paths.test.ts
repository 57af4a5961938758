/**
 * migrateService against the fake cluster, the paths besides a plain failure: cancellation at every
 * point, a source lost (adoption) or a copy lost, a fence whose reply was lost, a refused handoff, the
 * three ways replay ends, and refusals in validate (a node nobody serves, bad input, a held lock).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityName, FakeCluster, FaultSpec } from './fake-runtime';
import { AS_BEFORE, leftAsBefore, migrateInput, runMigration, type Run } from './harness';
import { WorkflowTestbed, workflowSaw } from './temporal-env';

let bed: WorkflowTestbed;
beforeAll(async () => {
  bed = await WorkflowTestbed.start();
});
afterAll(async () => {
  await bed?.stop();
});

/** finalize stops the source and removes the replay queue and both images at once: their order is free. */
const FINALIZE_SHADOW = ['commitPlacement', 'deleteQueue', 'node-a.removeImage', 'node-a.stopInstance', 'node-b.removeImage', 'releaseLock'];
const finalized = (steps: string[], from: number) => [...steps.slice(0, from + 1), ...steps.slice(from + 1, -1).sort(), ...steps.slice(-1)];

const FORWARD_SHADOW = ['acquireLock', 'prepareReplay', 'node-a.checkpoint', 'node-a.transfer', 'node-b.restore', 'node-b.startReplay'];
/** Once the copy may exist, the source is unfenced first: its answer proves it lives before the copy and its log go (model finding F2). */
const UNDO_SHADOW = ['unfence', 'node-b.stopInstance', 'deleteQueue', 'node-b.removeImage', 'node-a.removeImage', 'releaseLock'];

/** Cancels the migration once the call `inj` waits on has arrived. */
const cancelWhenReached = (get: () => { reached: Promise<void> }) => async ({ handle }: Run) => {
  await get().reached;
  await handle.cancel();
};

describe.concurrent('cancellation', () => {
  it('before validate: nothing is touched', async () => {
    const { errorType, fake, report } = await runMigration(bed, 'cancel-first', migrateInput('shadow'), {
      // Cancelled before any worker polls: the first workflow task already carries the cancellation.
      beforeWorkers: async ({ handle }) => void (await handle.cancel()),
    });
    expect(errorType).toBe('CancelledFailure');
    expect(fake.steps()).toEqual([]);
    expect(report).toMatchObject({ outcome: 'rolled-back', failure: { phase: 'validate' } });
    expect(leftAsBefore(fake)).toEqual(AS_BEFORE);
  });

  /**
   * Each case: the call that is running when the cancellation comes, how it reacts, and what follows. A
   * local activity is abandoned at once (its workflow stops waiting); a node or broker activity is asked
   * to stop and, here, completes anyway: the phase after it must then not start. (A worker busy with a
   * local activity sees the cancellation only when it heartbeats its workflow task, at 80 % of the
   * workflow task timeout: up to 8 s by default. These tests shorten that timeout to 2 s.)
   */
  const CASES: Array<{
    name: string;
    strategy: 'shadow' | 'stop-and-copy';
    activity: ActivityName;
    node?: string;
    action: FaultSpec['action'];
    lags?: number[];
    failedIn: string;
    message?: string;
    steps: string[];
    serving: boolean;
  }> = [
    {
      name: 'during validate (its probe is a local activity): only the lock is released',
      strategy: 'shadow',
      activity: 'probeService',
      action: 'hang',
      failedIn: 'validate',
      steps: ['acquireLock', 'releaseLock'],
      serving: false,
    },
    {
      name: 'before prepare (a node answered after the cancellation): the lock is released, the source checked',
      strategy: 'shadow',
      activity: 'describeNode',
      node: 'node-b',
      action: 'finish-when-cancelled',
      failedIn: 'validate',
      message: 'migration cancelled before prepare',
      steps: ['acquireLock', 'releaseLock'],
      serving: true,
    },
    {
      name: 'shadow, during prepare: the source stops writing its apply log, the replay queue goes',
      strategy: 'shadow',
      activity: 'prepareReplay',
      action: 'hang',
      failedIn: 'prepare',
      steps: ['acquireLock', 'prepareReplay!', 'unfence', 'deleteQueue', 'releaseLock'],
      serving: true,
    },
    {
      name: 'stop-and-copy, during prepare: the source is unfenced',
      strategy: 'stop-and-copy',
      activity: 'fenceSource',
      action: 'hang',
      failedIn: 'prepare',
      steps: ['acquireLock', 'fenceSource!', 'unfence', 'releaseLock'],
      serving: true,
    },
    {
      name: 'shadow, before transfer (the checkpoint completed anyway): its image is removed',
      strategy: 'shadow',
      activity: 'checkpoint',
      node: 'node-a',
      action: 'finish-when-cancelled',
      failedIn: 'checkpoint',
      message: 'migration cancelled before transfer',
      steps: ['acquireLock', 'prepareReplay', 'node-a.checkpoint', 'unfence', 'deleteQueue', 'node-a.removeImage', 'releaseLock'],
      serving: true,
    },
    {
      name: 'stop-and-copy, before transfer: the fenced source is unfenced, its image removed',
      strategy: 'stop-and-copy',
      activity: 'checkpoint',
      node: 'node-a',
      action: 'finish-when-cancelled',
      failedIn: 'checkpoint',
      message: 'migration cancelled before transfer',
      steps: ['acquireLock', 'fenceSource', 'node-a.checkpoint', 'unfence', 'node-a.removeImage', 'releaseLock'],
      serving: true,
    },
    {
      name: 'before restore (the transfer completed anyway): both images are removed',
      strategy: 'shadow',
      activity: 'transfer',
      node: 'node-a',
      action: 'finish-when-cancelled',
      failedIn: 'transfer',
      message: 'migration cancelled before restore',
      steps: ['acquireLock', 'prepareReplay', 'node-a.checkpoint', 'node-a.transfer', 'unfence', 'deleteQueue', 'node-b.removeImage', 'node-a.removeImage', 'releaseLock'],
      serving: true,
    },
    {
      name: 'during restore (the copy started anyway): the copy is stopped',
      strategy: 'shadow',
      activity: 'restore',
      node: 'node-b',
      action: 'finish-when-cancelled',
      failedIn: 'restore',
      steps: [...FORWARD_SHADOW.slice(0, 5), ...UNDO_SHADOW],
      serving: true,
    },
    {
      name: 'during replay: the copy is stopped and everything undone',
      strategy: 'shadow',
      activity: 'replayUntil',
      action: 'hang',
      failedIn: 'replay',
      steps: [...FORWARD_SHADOW, ...UNDO_SHADOW],
      serving: true,
    },
    {
      name: 'before fence (replay reached its threshold anyway): the source is never fenced',
      strategy: 'shadow',
      activity: 'replayUntil',
      action: 'finish-when-cancelled',
      lags: [4],
      failedIn: 'replay',
      message: 'migration cancelled before fence',
      steps: [...FORWARD_SHADOW, ...UNDO_SHADOW],
      serving: true,
    },
  ];

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    let inj: ReturnType<FakeCluster['inject']>;
    const { errorType, fake, report } = await runMigration(bed, `cancel-${c.activity}-${c.strategy}`, migrateInput(c.strategy), {
      prepare: (f) => {
        if (c.lags) f.replay.lags = c.lags;
        inj = f.inject(c.activity, { action: c.action, node: c.node, times: 1 });
      },
      drive: cancelWhenReached(() => inj),
      workflowTaskTimeout: c.action === 'hang' && c.node === undefined && c.activity !== 'replayUntil' ? '2s' : undefined,
    });
    // The client sees only that the workflow was cancelled; the report says where and why.
    expect(errorType).toBe('CancelledFailure');
    expect(fake.steps()).toEqual(c.steps);
    expect(report).toMatchObject({ outcome: 'rolled-back', failure: { phase: c.failedIn, type: 'CancelledFailure' } });
    if (c.message) expect(report.failure?.message).toBe(c.message);
    expect(leftAsBefore(fake)).toEqual(AS_BEFORE);
    // The post-condition runs unless validate never heard from the source.
    expect(report.accounting.serving).toEqual(c.serving ? { instance: 'game-0', position: fake.instance('game-0').applied, consumers: 1 } : null);
    expect(report.cancelIgnored).toBeUndefined();
  });

  it.each(['shadow', 'stop-and-copy'] as const)('%s, during the fence: the handoff completes and the cancellation is reported as ignored', async (strategy) => {
    let gate: ReturnType<FakeCluster['inject']>;
    const { result, errorType, fake, report } = await runMigration(bed, `cancel-fence-${strategy}`, migrateInput(strategy), {
      prepare: (f) => (gate = f.inject('fenceAndSwap', { action: 'gate', times: 1 })),
      drive: async ({ handle }) => {
        await gate.reached;
        await handle.cancel();
        // Only once the workflow has seen the cancellation does the fence answer.
        await workflowSaw(handle, 'workflowExecutionCancelRequestedEventAttributes');
        gate.release();
      },
    });
    expect(errorType).toBeUndefined();
    expect(result).toMatchObject({ outcome: 'completed', cancelIgnored: true });
    expect(report.accounting.handoff).toBe('exact');
    expect(fake.placements.get('game')?.node).toBe('node-b');
    expect(fake.consumersOf('game.primary').map((i) => i.instanceId)).toEqual([fake.copyOf('game')!.instanceId]);
    expect(fake.steps().slice(-1)).toEqual(['releaseLock']);
    expect(fake.steps()).not.toContain('unfence');
  });
  it('during finalize: the migration completes, and reports the cancellation as ignored', async () => {
    let gate: ReturnType<FakeCluster['inject']>;
    const { result, errorType, fake } = await runMigration(bed, 'cancel-finalize', migrateInput('shadow'), {
      prepare: (f) => (gate = f.inject('commitPlacement', { action: 'gate', times: 1 })),
      drive: async ({ handle }) => {
        await gate.reached;
        await handle.cancel();
        await workflowSaw(handle, 'workflowExecutionCancelRequestedEventAttributes');
        gate.release();
      },
      workflowTaskTimeout: '2s',
    });
    expect(errorType).toBeUndefined();
    expect(result?.outcome).toBe('completed');
    expect(fake.placements.get('game')?.node).toBe('node-b');
    expect(result?.cancelIgnored).toBe(true);
  });
});

describe.concurrent('the source or the copy dies', () => {
  /** Kills `instance` when the `nth` call of `activity` arrives, before it does anything. */
  const killAt = (f: FakeCluster, activity: ActivityName, nth: number, instance: () => string) =>
    f.inject(activity, { action: 'pass', times: 1, when: () => f.callsOf(activity).length >= nth, before: (fake) => fake.kill(instance()) });

  it.each([
    ['replay', 'replayUntil', 2, ['node-b.startReplay']],
    ['fence', 'fenceAndSwap', 1, ['node-b.startReplay', 'node-b.fenceAndSwap!', 'node-b.fenceAndSwap!']],
  ] as const)('source lost during %s: the copy seals and adopts its apply log and serves', async (phase, activity, nth, tail) => {
    const { result, fake, report } = await runMigration(bed, `adopt-${phase}`, migrateInput('shadow'), {
      prepare: (f) => killAt(f, activity, nth, () => 'game-0'),
    });
    const copy = fake.copyOf('game')!;
    expect(result?.outcome).toBe('completed');
    expect(report.sourceLost?.detectedIn).toBe(phase);
    expect(report.accounting.handoff).toBe('adopted');
    const steps = fake.steps();
    const at = FORWARD_SHADOW.length - 1 + tail.length;
    expect(finalized(steps, at + 2)).toEqual([...FORWARD_SHADOW.slice(0, -1), ...tail, 'sealReplay', 'node-b.adopt', ...FINALIZE_SHADOW]);
    // The copy replayed everything its source applied, and serves alone.
    expect(copy).toMatchObject({ role: 'primary', consuming: 'primary', applied: fake.instance('game-0').applied });
    expect(report.targetDigest).toBe(`game@${copy.applied}`);
    expect(fake.placements.get('game')).toMatchObject({ node: 'node-b', instanceId: copy.instanceId });
    expect(report.accounting.serving).toEqual({ instance: copy.instanceId, position: copy.applied, consumers: 1 });
    expect(fake.queues.size).toBe(0);
    expect(fake.locks.size).toBe(0);
  });

  it.each([
    ['a catch-up timeout', { type: 'CatchUpTimeout', message: 'game-b was still 3 messages behind after 2000 ms of catch-up (timeouts.catchUpMs)' }],
    ['a refusal', { type: 'ControlRefused', message: 'stale epoch' }],
  ] as const)('the source dies at the fence and the fence fails with %s: the copy adopts the stream, nothing of it is deleted (model finding F1)', async (_what, error) => {
    const { result, fake, report } = await runMigration(bed, `adopt-after-${error.type}`, migrateInput('shadow'), {
      prepare: (f) => f.inject('fenceAndSwap', { action: 'fail', times: 1, before: (fake) => fake.kill('game-0'), error }),
    });
    const copy = fake.copyOf('game')!;
    expect(result?.outcome).toBe('completed');
    expect(report.sourceLost?.detectedIn).toBe('fence');
    expect(report.accounting.handoff).toBe('adopted');
    // Everything the source applied (and acknowledged) is in the copy, which serves alone.
    expect(copy).toMatchObject({ role: 'primary', consuming: 'primary', applied: fake.instance('game-0').applied });
    expect(fake.steps()).toContain('node-b.adopt');
    expect(fake.steps()).not.toContain('node-b.stopInstance');
    expect(fake.placements.get('game')).toMatchObject({ node: 'node-b', instanceId: copy.instanceId });
    expect(fake.locks.size).toBe(0);
  });

  it('the fence fails while the source lives, and the source dies as the rollback begins: its unfence fails, and the copy adopts (model finding F2)', async () => {
    const { result, fake, report } = await runMigration(bed, 'adopt-at-rollback', migrateInput('shadow'), {
      prepare: (f) => {
        f.inject('fenceAndSwap', { action: 'fail', times: 1, error: { type: 'CatchUpTimeout', message: 'still 3 messages behind' } });
        f.inject('unfence', { action: 'fail', times: 1, before: (fake) => fake.kill('game-0'), error: { type: 'ControlRefused', message: 'game-0 does not answer', retryable: true } });
      },
    });
    const copy = fake.copyOf('game')!;
    expect(result?.outcome).toBe('completed');
    expect(report.accounting.handoff).toBe('adopted');
    expect(copy).toMatchObject({ role: 'primary', consuming: 'primary', applied: fake.instance('game-0').applied });
    expect(fake.steps()).not.toContain('node-b.stopInstance');
    expect(fake.steps()).not.toContain('deleteQueue!');
  });

  it('stop-and-copy: a source that dies after its checkpoint changes nothing (the copy takes over from the fenced position)', async () => {
    const { result, fake, report } = await runMigration(bed, 'sac-source-dies', migrateInput('stop-and-copy'), {
      prepare: (f) => killAt(f, 'transfer', 1, () => 'game-0'),
    });
    expect(result?.outcome).toBe('completed');
    expect(report.sourceLost).toBeUndefined();
    expect(report.accounting.handoff).toBe('exact');
    expect(fake.copyOf('game')).toMatchObject({ role: 'primary', applied: 1000 });
  });

  it('the source dies before its copy exists: its checkpoint is kept, and the post-condition fails loudly (ServiceNotServing)', async () => {
    const { errorType, error, fake, report } = await runMigration(bed, 'source-dies-early', migrateInput('shadow'), {
      prepare: (f) => f.inject('checkpoint', { action: 'fail-after', times: 1, after: (fake) => fake.kill('game-0'), error: { type: 'InstanceExited', message: 'game-0 exited during the dump' } }),
    });
    const imageId = report.migrationId;
    expect(errorType).toBe('ServiceNotServing');
    // Nothing to unfence, and the image is all that is left of the state: it stays.
    expect(fake.steps()).toEqual(['acquireLock', 'prepareReplay', 'node-a.checkpoint!', 'deleteQueue', 'releaseLock']);
    expect(report.stateKeptIn).toEqual([`image ${imageId} on node-a`]);
    expect([...fake.nodes.get('node-a')!.images.keys()]).toEqual([imageId]);
    expect(report.outcome).toBe('rolled-back');
    expect(report.notServing).toBe(error?.message);
    expect(report.notServing).toMatch(/^game is not served by exactly one instance after rolling back \(InstanceExited: game-0 exited during the dump\): /);
    expect(report.notServing).toMatch(new RegExp(`game\\.primary has 0 consumers; its last checkpoint is kept \\(image ${imageId} on node-a\\)`));
    expect(fake.locks.size).toBe(0);
  }, 30_000);

  it('the copy dies during replay: CopyLost, rolled back, the source serves', async () => {
    const { errorType, fake, report } = await runMigration(bed, 'copy-dies', migrateInput('shadow'), {
      prepare: (f) => killAt(f, 'replayUntil', 2, () => f.copyOf('game')!.instanceId),
    });
    expect(errorType).toBe('MigrationRolledBack');
    expect(report.failure).toMatchObject({ phase: 'replay', type: 'CopyLost' });
    expect(fake.steps()).toEqual([...FORWARD_SHADOW, ...UNDO_SHADOW]);
    expect(leftAsBefore(fake)).toEqual(AS_BEFORE);
  });
});

describe.concurrent('the handoff', () => {
  /** The fence did its work, but its reply never came back (every attempt). */
  const replyLost = (f: FakeCluster) => f.inject('fenceAndSwap', { action: 'fail-after', error: { retryable: true, type: 'Error', message: 'no reply (timeout)' } });

  it('a fence whose reply never came, though the copy took over: the copy is asked, the migration completes, and the report has the handoff', async () => {
    const { result, fake } = await runMigration(bed, 'reply-lost', migrateInput('shadow'), { prepare: replyLost });
    const copy = fake.copyOf('game')!;
    expect(result?.outcome).toBe('completed');
    // Retried (two attempts, then again while both instances live), then the copy was asked.
    expect(fake.callsOf('fenceAndSwap').length).toBeGreaterThanOrEqual(2);
    expect(fake.callsOf('instanceStatus').map((c) => c.input.instanceId)).toContain(copy.instanceId);
    expect(fake.steps()).not.toContain('unfence');
    expect(fake.placements.get('game')).toMatchObject({ node: 'node-b', instanceId: copy.instanceId });
    expect(fake.consumersOf('game.primary').map((i) => i.instanceId)).toEqual([copy.instanceId]);
    expect(fake.instance('game-0').alive).toBe(false);
    expect(result?.accounting.serving).toEqual({ instance: copy.instanceId, position: copy.applied, consumers: 1 });
    // What the copy recorded of its takeover, and the fenced source's status, stand in for the lost reply.
    expect(result?.accounting.handoff).toBe('exact');
    expect(result?.stateMatch).toBe(true);
    expect(result?.targetDigest).toBe(copy.activatedDigest);
    expect(result?.sourceDigest).toBe(result?.targetDigest);
    expect(result?.downtimeMs).toBeGreaterThan(0);
    expect(result?.accounting.copy?.afterSwap).not.toBeNull();
  });

  it('StateMismatch: the copy differs at the fence, the swap is refused and everything rolled back', async () => {
    const { errorType, error, fake, report } = await runMigration(bed, 'mismatch', migrateInput('shadow'), {
      prepare: (f) => (f.replay.divergeCopies = true),
    });
    const copy = fake.copyOf('game')!;
    expect(errorType).toBe('MigrationRolledBack');
    const refusal = `the state digest of ${copy.instanceId} differs from game-0's at position ${copy.applied}`;
    expect(error?.message).toBe(`migration of game rolled back after fence failed: the copy may not take over: ${refusal}`);
    expect(report.failure).toMatchObject({ phase: 'fence', type: 'StateMismatch' });
    expect(report.accounting.handoff).toBe('refused');
    expect(report.stateMatch).toBe(false);
    expect(report.sourceDigest).not.toBe(report.targetDigest);
    expect(fake.steps()).toEqual([...FORWARD_SHADOW, 'node-b.fenceAndSwap', ...UNDO_SHADOW]);
    expect(leftAsBefore(fake)).toEqual(AS_BEFORE);
    expect(report.accounting.serving?.instance).toBe('game-0');
  });
});

describe.concurrent('how replay ends', () => {
  it('threshold: the copy came within `threshold` messages', async () => {
    const { result } = await runMigration(bed, 'ends-threshold', migrateInput('shadow'), { prepare: (f) => (f.replay.lags = [40, 15, 4]) });
    expect(result?.replay).toMatchObject({ endedBy: 'threshold', thresholdReached: true, cutoffFired: false, stalled: false, finalLag: 4 });
    expect(result?.outcome).toBe('completed');
  });

  it('cutoff: the copy stayed behind until cutoffMs passed (convergence not judged: stallMs 0)', async () => {
    const { result, fake } = await runMigration(bed, 'ends-cutoff', migrateInput('shadow', { replay: { threshold: 10, cutoffMs: 1000, stallMs: 0 } }), {
      prepare: (f) => (f.replay.lags = [50]),
    });
    expect(result?.replay).toMatchObject({ endedBy: 'cutoff', cutoffFired: true, thresholdReached: false, stalled: false, finalLag: 50 });
    // Polled until the cutoff (each poll waits at most what is left of it), then fenced.
    expect(result?.phases.find((p) => p.phase === 'replay')?.ms).toBeGreaterThanOrEqual(1000);
    const windows = fake.callsOf('replayUntil').map((c) => c.input.windowMs);
    expect(windows.every((w) => w <= 1000)).toBe(true);
    expect(result?.outcome).toBe('completed');
    expect(result?.accounting.handoff).toBe('exact');
  });

  it.each([
    ['the lag does not fall', [50], 3],
    ['the lag falls too slowly to reach the threshold before the cutoff', [100, 99, 98, 97, 96], 3],
  ] as const)('not-converging: %s for stallMs', async (_what, lags, polls) => {
    const { result, fake } = await runMigration(bed, 'ends-stall', migrateInput('shadow', { replay: { threshold: 10, cutoffMs: 60_000, stallMs: 2000 } }), {
      prepare: (f) => (f.replay.lags = [...lags]),
    });
    // Polls 1 s apart (the fake's clock): the trend is judged once it spans stallMs.
    expect(fake.callsOf('replayUntil').length).toBe(polls);
    expect(result?.replay).toMatchObject({ endedBy: 'not-converging', stalled: true, thresholdReached: false, cutoffFired: false });
    expect(result?.replay.lagSlopePerSec).toBeLessThanOrEqual(0);
    expect(result?.outcome).toBe('completed');
  });
});

describe.concurrent('validate refuses, changing nothing', () => {
  it('NodeUnreachable: nobody serves the target node\'s task queue (schedule-to-start timeout)', async () => {
    const { errorType, error, fake } = await runMigration(bed, 'unreachable-target', migrateInput('shadow', { targetNode: 'node-x' }), {
      cluster: { nodes: { 'node-a': {}, 'node-b': {}, 'node-x': { served: false } } },
    });
    expect(errorType).toBe('NodeUnreachable');
    // The queue is the one the cluster side gave for the node, not a name the workflow made up.
    expect(error?.message).toMatch(
      /^targetNode: node "node-x" does not answer: no agent took work from its task queue \S+-fake-node-node-x within 1000 ms; start its agent \(ms2m agent --node node-x\) or choose another node$/,
    );
    expect(fake.steps()).toEqual(['acquireLock', 'releaseLock']);
    expect(leftAsBefore(fake)).toEqual(AS_BEFORE);
  });

  it('NodeUnreachable: nobody serves the source node\'s task queue', async () => {
    const { errorType, error, fake } = await runMigration(bed, 'unreachable-source', migrateInput('shadow'), {
      cluster: { nodes: { 'node-y': { served: false }, 'node-b': {} }, services: { game: { node: 'node-y' } } },
    });
    expect(errorType).toBe('NodeUnreachable');
    expect(error?.message).toMatch(/^the node of game \("node-y"\) does not answer: no agent took work from its task queue \S+-fake-node-node-y within 1000 ms; start its agent \(ms2m agent --node node-y\)$/);
    expect(fake.steps()).toEqual(['acquireLock', 'releaseLock']);
  });

  it.each([
    ['the service already runs on the target', { targetNode: 'node-a' }, 'targetNode: game already runs on node-a; choose another node'],
    ['there is no such node', { targetNode: 'node-z' }, 'targetNode: there is no node "node-z"; start its agent (ms2m agent --node node-z)'],
  ] as const)('InvalidInput: %s (before the lock)', async (_what, extra, message) => {
    const { errorType, error, fake } = await runMigration(bed, 'invalid', migrateInput('shadow', extra));
    expect(errorType).toBe('InvalidInput');
    expect(error?.message).toBe(message);
    expect(fake.steps()).toEqual([]);
  });

  it('InvalidInput: sequential and shadow-swap are for a StatefulSet\'s pod only, and such a pod moves by nothing else (before the lock)', async () => {
    const plain = await runMigration(bed, 'not-sts', migrateInput('sequential'));
    expect(plain.errorType).toBe('InvalidInput');
    expect(plain.error?.message).toBe("strategy: sequential moves a StatefulSet's pod, and game is not one; use shadow or stop-and-copy");
    expect(plain.fake.steps()).toEqual([]);
    const sts = await runMigration(bed, 'sts-shadow', migrateInput('shadow'), { cluster: { services: { game: { node: 'node-a', keepsName: true } } } });
    expect(sts.errorType).toBe('InvalidInput');
    expect(sts.error?.message).toBe('strategy: game runs as game-0, a pod its StatefulSet knows by name; migrate it with strategy sequential or shadow-swap');
    expect(sts.fake.steps()).toEqual([]);
  });

  it('InvalidInput: a malformed input never reaches an activity', async () => {
    const { errorType, error, fake } = await runMigration(bed, 'bad-input', { ...migrateInput('shadow'), strategy: 'teleport' as 'shadow' });
    expect(errorType).toBe('InvalidInput');
    expect(error?.message).toMatch(/strategy must be one of stop-and-copy, shadow/);
    expect(fake.calls).toEqual([]);
  });

  it('MigrationInProgress: another migration holds the lock, which stays with it', async () => {
    const { errorType, fake } = await runMigration(bed, 'locked', migrateInput('shadow'), {
      prepare: (f) => f.locks.set('game', { workflowId: 'someone-else', runId: 'r1' }),
    });
    expect(errorType).toBe('MigrationInProgress');
    expect(fake.steps()).toEqual(['acquireLock!']);
    expect(fake.locks.get('game')?.workflowId).toBe('someone-else');
  });

  it('SourceNotServing: a fenced source is refused; the lock is released', async () => {
    const { errorType, fake } = await runMigration(bed, 'not-serving', migrateInput('shadow'), {
      prepare: (f) => (f.instance('game-0').fenced = true),
    });
    expect(errorType).toBe('SourceNotServing');
    expect(fake.steps()).toEqual(['acquireLock', 'releaseLock']);
  });
});
