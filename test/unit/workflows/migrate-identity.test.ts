/**
 * migrateService for an instance its controller knows by name (a StatefulSet's pod, `keepsName`): the
 * two strategies that end with an instance of the same name, a clean run and the failures that matter.
 * The fake's controller starts an empty instance of that name the moment it is stopped unless it is held,
 * and refuses a second live instance of the name: a workflow that forgot to hold it loses the state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FakeCluster } from './fake-runtime';
import { AS_BEFORE, leftAsBefore, migrateInput, runMigration, sortedMiddle } from './harness';
import { WorkflowTestbed } from './temporal-env';

let bed: WorkflowTestbed;
beforeAll(async () => {
  bed = await WorkflowTestbed.start();
});
afterAll(async () => {
  await bed?.stop();
});

const STATEFUL_SET = { services: { game: { node: 'node-a', keepsName: true } } };
/** Everything the migration undid or left, for a migration that rolled back: as before, and the controller has its pod back. */
const asBeforeWithController = (fake: FakeCluster) => ({ ...leftAsBefore(fake), held: [...fake.held] });

describe.concurrent('sequential: the instance itself moves, under its own name', () => {
  it('succeeds: fenced, dumped, stopped with its controller held, resumed on the target at the fenced position, given back to its controller', async () => {
    const { result, fake, report } = await runMigration(bed, 'seq-ok', migrateInput('sequential'), { cluster: STATEFUL_SET });
    expect(result?.outcome).toBe('completed');
    expect(report.phases.map((p) => p.phase)).toEqual(['validate', 'prepare', 'checkpoint', 'transfer', 'restore', 'fence', 'finalize']);
    expect(sortedMiddle(fake.steps(), 9, 12)).toEqual([
      'acquireLock',
      'fenceSource',
      'node-a.checkpoint',
      'node-a.transfer',
      'holdController',
      'node-a.stopInstance',
      'node-b.restore',
      'unfence',
      'commitPlacement',
      'node-a.removeImage',
      'node-a.stopInstance',
      'node-b.removeImage',
      'releaseLock',
    ]);
    const moved = fake.instance('game-0');
    expect(moved).toMatchObject({ node: 'node-b', origin: 'restored', role: 'primary', consuming: 'primary', fenced: false, applied: 1000 });
    expect(fake.instancesOf('game').filter((i) => i.alive)).toEqual([moved]);
    expect(fake.placements.get('game')).toMatchObject({ node: 'node-b', instanceId: 'game-0', keepsName: true });
    expect(fake.held.size).toBe(0);
    expect(fake.locks.size).toBe(0);
    expect(report).toMatchObject({ sourceInstance: 'game-0', targetInstance: 'game-0', stateMatch: true, sourceDigest: 'game@1000', targetDigest: 'game@1000' });
    expect(report.accounting.handoff).toBe('moved');
    expect(report.accounting.serving).toEqual({ instance: 'game-0', position: 1000, consumers: 1 });
    expect(report.downtimeMs).toBeGreaterThanOrEqual(0);
    expect(report.replay.endedBy).toBe('none');
  });

  it('the restore on the target fails: the instance is restored where it was from its own image, its controller gets it back, it serves with all its state', async () => {
    const { errorType, fake, report } = await runMigration(bed, 'seq-restore-fails', migrateInput('sequential'), {
      cluster: STATEFUL_SET,
      prepare: (f) => f.inject('restore', { action: 'fail', node: 'node-b', times: 1, error: { type: 'RestoreFailed', message: 'injected: restore failed' } }),
    });
    expect(errorType).toBe('MigrationRolledBack');
    expect(report.failure).toMatchObject({ phase: 'restore', type: 'RestoreFailed' });
    expect(sortedMiddle(fake.steps(), 11, 13)).toEqual([
      'acquireLock',
      'fenceSource',
      'node-a.checkpoint',
      'node-a.transfer',
      'holdController',
      'node-a.stopInstance',
      'node-b.restore!',
      'node-b.stopInstance',
      'node-a.restore',
      'commitPlacement',
      'unfence',
      'node-a.removeImage',
      'node-b.removeImage',
      'releaseLock',
    ]);
    expect(fake.instance('game-0')).toMatchObject({ node: 'node-a', origin: 'restored', applied: 1000 });
    expect(asBeforeWithController(fake)).toEqual({ ...AS_BEFORE, held: [] });
    expect(report.accounting.serving).toEqual({ instance: 'game-0', position: 1000, consumers: 1 });
  });

  it('the moved instance is not what was fenced (StateMismatch): it is stopped, and the source comes back where it was', async () => {
    const { errorType, fake, report } = await runMigration(bed, 'seq-mismatch', migrateInput('sequential'), {
      cluster: STATEFUL_SET,
      prepare: (f) => {
        f.replay.divergeCopies = true;
        // Only the move diverges; the instance restored on the source in the rollback is the image's.
        f.inject('restore', { action: 'pass', node: 'node-b', times: 1, after: (fake) => (fake.replay.divergeCopies = false) });
      },
    });
    expect(errorType).toBe('MigrationRolledBack');
    expect(report.failure).toMatchObject({ phase: 'fence', type: 'StateMismatch' });
    expect(report.accounting.handoff).toBe('refused');
    expect(report.stateMatch).toBe(false);
    expect(fake.steps()).toContain('node-b.stopInstance');
    expect(fake.instance('game-0')).toMatchObject({ node: 'node-a', applied: 1000, diverged: false });
    expect(asBeforeWithController(fake)).toEqual({ ...AS_BEFORE, held: [] });
  });
});

describe.concurrent('shadow-swap: a shadow copy serves, then hands over to a pod of the StatefulSet\'s name', () => {
  it('succeeds: two handoffs, the second on the target; the pod of the old name serves there with the whole stream', async () => {
    const { result, fake, report } = await runMigration(bed, 'swap-ok', migrateInput('shadow-swap'), { cluster: STATEFUL_SET });
    expect(result?.outcome).toBe('completed');
    const shadow = report.swap!.shadow;
    expect(shadow).not.toBe('game-0');
    const steps = fake.steps();
    expect(sortedMiddle(sortedMiddle(steps, 8, 12), 19, 23)).toEqual([
      // the first handoff: game-0 to the shadow on node-b
      'acquireLock',
      'prepareReplay',
      'node-a.checkpoint',
      'node-a.transfer',
      'node-b.restore',
      'node-b.startReplay',
      'node-b.fenceAndSwap',
      // the old pod goes, its controller held, which frees its name
      'holdController',
      'deleteQueue',
      'node-a.removeImage',
      'node-a.stopInstance',
      'node-b.removeImage',
      // the second handoff, the shadow to game-0 on the same node
      'prepareReplay',
      'node-b.checkpoint',
      'node-b.transfer',
      'node-b.restore',
      'node-b.startReplay',
      'node-b.fenceAndSwap',
      'commitPlacement',
      'deleteQueue',
      'node-b.removeImage',
      'node-b.removeImage',
      'node-b.stopInstance',
      'releaseLock',
    ]);
    expect(fake.callsOf('restore', 'node-b').map((c) => c.input.instanceId)).toEqual([shadow, 'game-0']);
    const pod = fake.instance('game-0');
    expect(pod).toMatchObject({ node: 'node-b', role: 'primary', consuming: 'primary', fenced: false });
    // The stream went source → shadow → pod: the pod stands where the fenced shadow stood.
    expect(pod.applied).toBe(fake.instance(shadow).applied);
    expect(fake.instance(shadow).alive).toBe(false);
    expect(fake.instancesOf('game').filter((i) => i.alive)).toEqual([pod]);
    expect(fake.placements.get('game')).toMatchObject({ node: 'node-b', instanceId: 'game-0', keepsName: true });
    expect(fake.held.size).toBe(0);
    expect(fake.queues.size).toBe(0);
    expect([...fake.nodes.values()].flatMap((n) => [...n.images.keys()])).toEqual([]);
    expect(report.targetInstance).toBe('game-0');
    expect(report.accounting.handoff).toBe('exact');
    // The first fence found the shadow exact, and the pod went on from there (the fake's digest is its position).
    expect(report.swap?.downtimeMs).toBe(30);
    expect(report.swap?.shadowDigest).toBe(report.swap?.sourceDigest);
    expect(pod.applied).toBeGreaterThan(Number(report.swap?.sourceDigest.split('@')[1]));
    expect(report.downtimeMs).toBe(60);
    expect(report.accounting.serving).toEqual({ instance: 'game-0', position: pod.applied, consumers: 1 });
  });

  it('the first handoff fails: an ordinary rollback, the controller never held', async () => {
    const { errorType, fake, report } = await runMigration(bed, 'swap-first-fails', migrateInput('shadow-swap'), {
      cluster: STATEFUL_SET,
      prepare: (f) => f.inject('restore', { action: 'fail', node: 'node-b', times: 1, error: { type: 'RestoreFailed', message: 'injected: restore failed' } }),
    });
    expect(errorType).toBe('MigrationRolledBack');
    expect(report.failure).toMatchObject({ phase: 'restore', type: 'RestoreFailed' });
    expect(fake.steps()).not.toContain('holdController');
    expect(asBeforeWithController(fake)).toEqual({ ...AS_BEFORE, held: [] });
  });

  it('the second handoff fails (IdentitySwapFailed): it is undone, the shadow serves alone with the whole stream, the StatefulSet stays held', async () => {
    const { errorType, error, fake, report } = await runMigration(bed, 'swap-second-fails', migrateInput('shadow-swap'), {
      cluster: STATEFUL_SET,
      prepare: (f) =>
        f.inject('restore', { action: 'fail', node: 'node-b', times: 1, when: (input) => input.instanceId === 'game-0', error: { type: 'RestoreFailed', message: 'injected: restore failed' } }),
    });
    const shadow = report.swap!.shadow;
    expect(errorType).toBe('IdentitySwapFailed');
    expect(error?.message).toMatch(new RegExp(`^game is served by its shadow ${shadow} on node-b: the second handoff, to game-0, failed in restore and was undone \\(injected: restore failed\\)`));
    expect(report.failure).toMatchObject({ phase: 'restore', type: 'RestoreFailed' });
    expect(fake.instance(shadow)).toMatchObject({ alive: true, role: 'primary', consuming: 'primary', fenced: false, applyLog: null });
    expect(fake.instance('game-0')).toMatchObject({ node: 'node-a', alive: false });
    expect(fake.consumersOf('game.primary').map((i) => i.instanceId)).toEqual([shadow]);
    expect(report.accounting.serving).toEqual({ instance: shadow, position: fake.instance(shadow).applied, consumers: 1 });
    // Its controller must not start an empty game-0 while the shadow serves: it stays held, for an operator.
    expect([...fake.held]).toEqual(['game']);
    expect(fake.queues.size).toBe(0);
    expect(fake.locks.size).toBe(0);
  });
});
