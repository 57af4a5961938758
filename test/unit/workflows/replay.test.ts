/**
 * Replays every history recorded from real runs (test/replay/histories, recorded by
 * test/replay/record.test.ts) against the current workflow code: a change that would make a running
 * migration, deploy, rebalance or drain fail on its next workflow task (another command, another order,
 * a timer more or less) fails here with the workflow's DeterminismViolationError or ReplayError.
 */
import { migrationSinks } from '../../../lib/metrics';
import { readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { Worker, type ReplayResult } from '@temporalio/worker';
import { beforeAll, describe, expect, it } from 'vitest';
import { historyFromJSON } from '../../replay/history-json';
import { payloadConverterPath, workflowBundle } from './temporal-env';

const DIR = path.resolve(__dirname, '../../replay/histories');
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

/** The runs the recorder makes: each must have its history here. */
const RECORDED = [
  'deploy-service',
  'undeploy-service',
  'migrate-shadow',
  'migrate-stop-and-copy',
  'migrate-stream',
  'migrate-lazy',
  'migrate-rolled-back',
  'migrate-adopted',
  'migrate-cancelled',
  'drain-node',
  'drain-node-child',
  'set-node-schedulable',
  'rebalance',
  'rebalance-child',
];
/**
 * Histories kept from before a patched() change of migrateService, recorded then under the names above:
 * migrations started before the change replay on its old branch.
 */
const KEPT = ['migrate-shadow', 'migrate-stop-and-copy', 'migrate-rolled-back', 'migrate-adopted', 'migrate-cancelled', 'drain-node-child', 'rebalance-child'].map(
  (n) => `before-one-activity-per-node-step-${n}`,
);
const EXPECTED = [...RECORDED, ...KEPT];

/** Replay results by file name. */
const results = new Map<string, ReplayResult>();

beforeAll(async () => {
  const histories = files.map((f) => {
    const history = historyFromJSON(readFileSync(path.join(DIR, f), 'utf8'));
    // The recorded run's own workflow id: the workflows derive names from it (a child's id, say).
    const workflowId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowId ?? f;
    return { file: f.replace(/\.json$/, ''), workflowId, history };
  });
  const byId = new Map(histories.map((h) => [h.workflowId, h.file]));
  expect(byId.size, 'two histories of one workflow id').toBe(histories.length);
  for await (const r of Worker.runReplayHistories({ workflowBundle: await workflowBundle(), dataConverter: { payloadConverterPath: payloadConverterPath() }, sinks: migrationSinks }, histories)) {
    results.set(byId.get(r.workflowId)!, r);
  }
}, 60_000);

describe('recorded histories replay on the current workflows', () => {
  it('every recorded kind of run is there', () => {
    expect(files.map((f) => f.replace(/\.json$/, '')).sort()).toEqual([...EXPECTED].sort());
  });

  it.each(files.map((f) => f.replace(/\.json$/, '')))('%s', (name) => {
    const r = results.get(name);
    expect(r, `no replay result for ${name}`).toBeDefined();
    // A DeterminismViolationError or ReplayError, with the workflow's own message.
    expect(r?.error, r?.error ? `${(r.error as Error).name}: ${(r.error as Error).message}` : undefined).toBeUndefined();
  });
});
