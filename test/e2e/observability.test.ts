/**
 * Metrics as an operator sees them: a real Prometheus (the stack's, Debian's package) scrapes the local
 * cluster's orchestrator and node agents and this test process (which verifies the migration against the
 * producers' and the output logs); what Prometheus holds is compared with the migration's report.
 * The alert rules pass promtool's own unit tests (they fire on one lost message), and every metric the
 * dashboard or the rules name exists.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowFailedError } from '@temporalio/client';
import { runScenario } from '../../cli/scenario';
import { loadConfig } from '../../lib/config';
import { ensureStack } from '../../lib/stack';
import { serveMetrics, type MetricsEndpoint } from '../../lib/metrics-server';
import { activeTargets, query, queryUntil, type Sample } from '../../lib/prometheus';
import type { MigrationReport } from '../../lib/migration';
import { startE2eCluster, stopE2eCluster, type E2eCluster } from './e2e-cluster';
import { expectExact } from './exact';
import { metricNamesIn } from '../unit/metric-names';

const run = Date.now().toString(36);
const cluster = `obs-${run}`;
const taskQueue = `ms2m-observability-${run}`;
let e2e: E2eCluster;
let own: MetricsEndpoint | null;
let prom: string;

beforeAll(async () => {
  await ensureStack({ observe: true });
  prom = loadConfig().prometheusUrl;
  // The workers (started below, with this environment) and this process label their series with it.
  process.env.MS2M_METRICS_CLUSTER = cluster;
  own = await serveMetrics({ component: 'cli' });
  e2e = await startE2eCluster('observability', ['node-a', 'node-b'], { taskQueue });
}, 240_000);

afterAll(async () => {
  await stopE2eCluster(e2e);
  await own?.close();
});

const sel = `cluster="${cluster}"`;
const total = (r: Sample[]): number => r.reduce((n, s) => n + s.value, 0);

describe('Prometheus scrapes the workers', () => {
  let report: MigrationReport;

  it('finds every worker and this process as its targets', async () => {
    expect(own).not.toBeNull();
    const targets = await (async () => {
      for (let i = 0; i < 40; i++) {
        const t = (await activeTargets(prom)).filter((x) => x.labels.cluster === cluster && x.health === 'up');
        if (t.length === 4) return t;
        await new Promise((r) => setTimeout(r, 250));
      }
      return (await activeTargets(prom)).filter((x) => x.labels.cluster === cluster);
    })();
    expect(targets.map((t) => `${t.labels.component}${t.labels.node ? `/${t.labels.node}` : ''}:${t.health}`).sort()).toEqual(['agent/node-a:up', 'agent/node-b:up', 'cli:up', 'orchestrator:up']);
  }, 30_000);

  it('holds what the report of a migration says: its count, outcome, downtime bucket, freeze, and 0 lost', async () => {
    ({ report } = await runScenario(e2e.cluster, { service: `obs-${run}`, workload: 'ledger', from: 'node-a', to: 'node-b', strategy: 'shadow', rate: 40, stateBytes: 4 * 1024 * 1024 }));
    expectExact(report.verification!, 10);
    expect(report.outcome).toBe('completed');

    const finished = await queryUntil(prom, `sum by (strategy, outcome) (ms2m_migrations_finished_total{${sel}})`, (r) => total(r) >= 1);
    expect(finished.map((s) => [s.metric.strategy, s.metric.outcome, s.value])).toEqual([['shadow', 'completed', 1]]);
    expect(total(await query(prom, `ms2m_migrations_started_total{${sel}}`))).toBe(1);

    // The histogram's buckets: 0 below the report's downtime, 1 from the first bound at or above it.
    const buckets = await query(prom, `sum by (le) (ms2m_migration_downtime_seconds_bucket{${sel}})`);
    expect(buckets.length).toBeGreaterThan(5);
    const downtime = report.downtimeMs / 1000;
    for (const b of buckets) expect([b.metric.le, b.value]).toEqual([b.metric.le, downtime <= (b.metric.le === '+Inf' ? Infinity : Number(b.metric.le)) ? 1 : 0]);
    expect(total(await query(prom, `ms2m_migration_downtime_seconds_sum{${sel}}`))).toBeCloseTo(downtime, 6);
    expect(total(await query(prom, `ms2m_migration_duration_seconds_sum{${sel}}`))).toBeCloseTo(report.totalMs / 1000, 6);
    // Each phase of the report once, under its name.
    const phases = await query(prom, `sum by (phase) (ms2m_migration_phase_duration_seconds_count{${sel}})`);
    const reported = new Map<string, number>();
    for (const p of report.phases) reported.set(p.phase, (reported.get(p.phase) ?? 0) + 1);
    expect(Object.fromEntries(phases.map((s) => [s.metric.phase, s.value]))).toEqual(Object.fromEntries(reported));

    // The source's agent timed the dump; its freeze is the report's.
    const freeze = await query(prom, `ms2m_criu_freeze_seconds_sum{${sel},node="node-a"}`);
    // (the report rounds it to the millisecond)
    expect(Math.abs(total(freeze) - report.freezeMs / 1000)).toBeLessThanOrEqual(0.0005);
    expect(total(await query(prom, `ms2m_image_transfer_bytes_total{${sel},node="node-a"}`))).toBeGreaterThan(report.checkpointBytes * 0.5);
    expect(total(await query(prom, `ms2m_criu_restore_seconds_count{${sel},node="node-b"}`))).toBe(1);

    // The verification, from this process: one, and nothing lost, applied twice or emitted twice.
    const v = report.verification!;
    await queryUntil(prom, `sum(ms2m_verifications_total{${sel}})`, (r) => total(r) === 1);
    expect(total(await query(prom, `sum(ms2m_verification_messages_lost_total{${sel}})`))).toBe(v.lost);
    expect(total(await query(prom, `sum(ms2m_verification_messages_duplicated_total{${sel}})`))).toBe(v.duplicated);
    expect(total(await query(prom, `sum(ms2m_verification_duplicate_outputs_total{${sel}})`))).toBe(v.duplicateOutputs);
    expect(v.lost + v.duplicated + v.duplicateOutputs).toBe(0);
    // No replay lag series outlives its migration.
    expect(await query(prom, `ms2m_replay_lag_messages{${sel}}`)).toEqual([]);
  }, 240_000);

  it('counts a refused migration as refused, changing nothing else', async () => {
    const err = await e2e.cluster.client.workflow
      .execute('migrateService', { taskQueue, workflowId: `obs-refused-${run}`, args: [{ service: `obs-${run}`, targetNode: 'node-zz' }] })
      .then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const r = await queryUntil(prom, `sum by (outcome) (ms2m_migrations_finished_total{${sel}})`, (x) => total(x) >= 2);
    expect(Object.fromEntries(r.map((s) => [s.metric.outcome, s.value]))).toEqual({ completed: 1, refused: 1 });
    expect(total(await query(prom, `ms2m_migration_downtime_seconds_count{${sel}}`))).toBe(1);
  }, 60_000);

  it('serves the Temporal SDK metrics of every worker beside ms2m own', async () => {
    const sdk = await query(prom, `count by (component) ({__name__=~"temporal_.+", ${sel}})`);
    expect(sdk.map((s) => s.metric.component).sort()).toEqual(['agent', 'orchestrator']);
    // The SDK's names the dashboard uses are the ones its exporter serves.
    for (const name of metricNamesIn(dashboardAndRules()).filter((n) => n.startsWith('temporal_'))) {
      expect([name, total(await query(prom, `count({__name__="${name}_count", ${sel}})`))]).toEqual([name, expect.any(Number)]);
      expect(total(await query(prom, `count({__name__="${name}_count", ${sel}})`))).toBeGreaterThan(0);
    }
  });
});

function dashboardAndRules(): string {
  const dir = path.join(loadConfig().projectRoot, 'infra', 'observability');
  return readFileSync(path.join(dir, 'grafana-dashboard.json'), 'utf8') + readFileSync(path.join(dir, 'alerts.yml'), 'utf8');
}

describe('alert rules', () => {
  it("pass promtool's checks and its unit tests (the exactly-once alerts fire on a single lost message)", () => {
    const dir = path.join(loadConfig().projectRoot, 'infra', 'observability');
    expect(execFileSync('promtool', ['check', 'rules', 'alerts.yml'], { cwd: dir, encoding: 'utf8' })).toMatch(/SUCCESS: \d+ rules found/);
    expect(execFileSync('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: dir, encoding: 'utf8' })).toMatch(/SUCCESS/);
  });

  it('are loaded by the stack\'s Prometheus, and none fires for this cluster', async () => {
    const rules = (await (await fetch(`${prom}/api/v1/rules`)).json()) as { data: { groups: Array<{ rules: Array<{ name: string }> }> } };
    const names = rules.data.groups.flatMap((g) => g.rules.map((r) => r.name));
    expect(names).toEqual(expect.arrayContaining(['Ms2mMessagesLost', 'Ms2mMessagesAppliedTwice', 'Ms2mDuplicateOutputs', 'Ms2mMigrationNotServing']));
    expect(await query(prom, `ALERTS{${sel}}`)).toEqual([]);
  });
});
