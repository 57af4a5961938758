/** Progress and reports of a made-up migration, as the workflow's queries would answer. */
import { initialReport, type MigrationProgress, type MigrationReport, type Phase, type Stage } from '../../../lib/migration';

/** Ahead of any clock the tests run on: the view then shows the progress's own elapsedMs. */
export const T0 = 4_000_000_000_000;

/** The migration of `service` at `stage`, every phase before it done in `ms` each. */
export function progress(stage: Stage, o: Partial<MigrationProgress> & { ms?: number; service?: string } = {}): MigrationProgress {
  const order: Phase[] = ['validate', 'prepare', 'checkpoint', 'transfer', 'restore', 'replay', 'fence', 'finalize'];
  const ms = o.ms ?? 100;
  const upTo = stage === 'done' ? order.length : Math.max(0, order.indexOf(stage as Phase));
  const phases = order.slice(0, upTo).map((phase, i) => ({ phase, startedAt: T0 + i * ms, ms }));
  return {
    stage,
    service: o.service ?? 'game',
    strategy: 'shadow',
    sourceNode: 'node-a',
    targetNode: 'node-b',
    lag: stage === 'replay' ? 40 : null,
    phases,
    startedAt: T0,
    elapsedMs: upTo * ms + 50,
    ...o,
  };
}

export function report(o: Partial<MigrationReport> = {}): MigrationReport {
  const r = initialReport({ service: 'game', strategy: 'shadow', targetNode: 'node-b' }, 'migrate-game', 'm-1', T0);
  return { ...r, sourceNode: 'node-a', sourceInstance: 'game-1', targetInstance: 'game-2', totalMs: 1234, downtimeMs: 56, stateMatch: true, ...o };
}
