/**
 * ms2m's own metrics: names that follow Prometheus's conventions, every name the alert rules and the
 * dashboard use exists, and what a migration's end, a node activity and a verification record.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { withActivityMetrics } from '../../lib/activity-telemetry';
import { metrics, outcomeOf, recordMigrationEnded, recordVerification, registry } from '../../lib/metrics';
import { emptyAccounting, type MigrationReport } from '../../lib/migration';
import { metricNamesIn } from './metric-names';

const observability = path.join(__dirname, '..', '..', 'infra', 'observability');
const value = async (name: string, labels: Record<string, string> = {}): Promise<number> =>
  ((await registry.getSingleMetric(name)!.get()).values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((n, v) => n + v.value, 0));

function report(o: Partial<MigrationReport> = {}): MigrationReport {
  return {
    migrationId: 'm-1',
    service: 'orders',
    outcome: 'completed',
    totalMs: 900,
    downtimeMs: 12,
    freezeMs: 40,
    checkpointBytes: 10 * 1024 * 1024,
    phases: [
      { phase: 'validate', startedAt: 0, ms: 20 },
      { phase: 'fence', startedAt: 0, ms: 30 },
    ],
    accounting: emptyAccounting(),
    ...o,
  } as MigrationReport;
}

describe('metric names', () => {
  it('follow Prometheus conventions: ms2m_ prefix, _total counters, a unit on histograms and gauges', async () => {
    for (const m of (await registry.getMetricsAsJSON()).filter((x) => !x.name.startsWith('ms2m_process_') && !x.name.startsWith('nodejs_'))) {
      expect(m.name).toMatch(/^ms2m_[a-z0-9_]+$/);
      if (String(m.type) === 'counter') expect(m.name).toMatch(/_total$/);
      if (String(m.type) === 'histogram' || String(m.type) === 'gauge') expect(m.name).toMatch(/_(seconds|bytes|messages)$/);
      expect(m.help.length).toBeGreaterThan(10);
    }
  });

  it('cover every ms2m metric the alert rules and the dashboard use', () => {
    const used = metricNamesIn(readFileSync(path.join(observability, 'alerts.yml'), 'utf8') + readFileSync(path.join(observability, 'grafana-dashboard.json'), 'utf8'));
    const ours = used.filter((n) => n.startsWith('ms2m_'));
    expect(ours.length).toBeGreaterThan(10);
    for (const n of ours) expect([n, registry.getSingleMetric(n) !== undefined]).toEqual([n, true]);
  });

  it('the dashboard is valid JSON whose every panel has a query', () => {
    const d = JSON.parse(readFileSync(path.join(observability, 'grafana-dashboard.json'), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    for (const p of d.panels) expect([p.title, p.targets.length > 0 && p.targets.every((t) => t.expr.length > 0)]).toEqual([p.title, true]);
  });
});

describe('outcome labels', () => {
  it('tell apart completed, rolled back, refused, not serving, cancelled and failed', () => {
    expect(outcomeOf(report())).toBe('completed');
    expect(outcomeOf(report({ outcome: 'rolled-back', failure: { phase: 'restore', type: 'RestoreFailed', message: '' } }), 'MigrationRolledBack')).toBe('rolled_back');
    expect(outcomeOf(report({ outcome: 'rolled-back', failure: { phase: 'validate', type: 'InvalidInput', message: '' } }), 'InvalidInput')).toBe('refused');
    expect(outcomeOf(report({ notServing: 'two consumers' }), 'ServiceNotServing')).toBe('not_serving');
    expect(outcomeOf(null, 'InvalidInput')).toBe('refused');
    expect(outcomeOf(null, 'CancelledFailure')).toBe('cancelled');
    expect(outcomeOf(null, 'Error')).toBe('failed');
  });
});

describe('recording', () => {
  it("a migration's end: counted by outcome, its times observed, downtime only when it completed", async () => {
    const before = { done: await value('ms2m_migrations_finished_total', { strategy: 'shadow', outcome: 'completed' }), down: await value('ms2m_migration_downtime_seconds') };
    recordMigrationEnded('shadow', report());
    recordMigrationEnded('shadow', report({ outcome: 'rolled-back', failure: { phase: 'restore', type: 'RestoreFailed', message: '' } }), 'MigrationRolledBack');
    expect(await value('ms2m_migrations_finished_total', { strategy: 'shadow', outcome: 'completed' })).toBe(before.done + 1);
    expect(await value('ms2m_migrations_finished_total', { strategy: 'shadow', outcome: 'rolled_back' })).toBe(1);
    const h = await metrics.downtime.get();
    expect(h.values.find((v) => v.metricName === 'ms2m_migration_downtime_seconds_count')!.value).toBe(1);
    expect(h.values.find((v) => v.metricName === 'ms2m_migration_downtime_seconds_sum')!.value).toBeCloseTo(0.012, 9);
    expect(h.values.find((v) => v.metricName === 'ms2m_migration_downtime_seconds_bucket' && v.labels.le === 0.01)!.value).toBe(0);
    expect(h.values.find((v) => v.metricName === 'ms2m_migration_downtime_seconds_bucket' && v.labels.le === 0.02)!.value).toBe(1);
  });

  it('a verification: its lost, applied-twice and duplicate-output counts', async () => {
    recordVerification({ lost: 2, duplicated: 1, duplicateOutputs: 0, finalStateMatchesProducers: false } as never);
    expect(await value('ms2m_verifications_total')).toBe(1);
    expect(await value('ms2m_verification_messages_lost_total')).toBe(2);
    expect(await value('ms2m_verification_messages_duplicated_total')).toBe(1);
    expect(await value('ms2m_verification_state_mismatches_total')).toBe(1);
  });

  it("a node's activities: timed by outcome, failures by type, the tools' times from the results", async () => {
    const acts = withActivityMetrics('node-x', {
      checkpoint: async () => ({ dumpMs: 80, freezeMs: 30, bytes: 5 }),
      restore: async () => {
        throw Object.assign(new Error('criu failed'), { type: 'RestoreFailed' });
      },
    });
    await acts.checkpoint();
    await expect(acts.restore()).rejects.toThrow('criu failed');
    const timed = (await metrics.nodeActivityDuration.get()).values.filter((v) => v.metricName?.endsWith('_count') && v.labels.node === 'node-x');
    expect(timed.map((v) => [v.labels.activity, v.labels.outcome, v.value]).sort()).toEqual([
      ['checkpoint', 'ok', 1],
      ['restore', 'error', 1],
    ]);
    expect(await value('ms2m_node_activity_failures_total', { node: 'node-x', activity: 'restore', type: 'RestoreFailed' })).toBe(1);
    const freeze = (await metrics.criuFreeze.get()).values.find((v) => v.metricName === 'ms2m_criu_freeze_seconds_sum' && v.labels.node === 'node-x');
    expect(freeze?.value).toBeCloseTo(0.03, 9);
  });
});
