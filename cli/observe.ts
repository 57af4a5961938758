/**
 * The demo's `--observe`: the stack's Prometheus scrapes the demo's workers and the demo itself (its
 * verification), and once the migration is in Prometheus the demo prints where to look: the Prometheus,
 * every worker's metrics address as Prometheus sees it, and a query that shows the migration, with its
 * result.
 */
import { loadConfig } from '../lib/config';
import { serveMetrics, type MetricsEndpoint } from '../lib/metrics-server';
import { activeTargets, graphUrl, labelsText, queryUntil } from '../lib/prometheus';
import type { MigrationReport } from '../lib/migration';

export interface Observation {
  cluster: string;
  own: MetricsEndpoint | null;
}

/** Before the workers start: their series get a `cluster` label of this run's own. */
export async function startObserving(): Promise<Observation> {
  const cluster = `demo-${new Date().toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}`;
  process.env.MS2M_METRICS_CLUSTER = cluster;
  return { cluster, own: await serveMetrics({ component: 'cli' }) };
}

/** Waits until Prometheus has scraped the migration's end and its verification, then prints where to see them. */
export async function showObservation(o: Observation, report: MigrationReport, say: (line: string) => void): Promise<void> {
  const prom = loadConfig().prometheusUrl;
  if (!prom) throw new Error('--observe: no Prometheus in the stack (MS2M_PROMETHEUS_URL); infra/stack.sh --observe starts one');
  const migrations = `ms2m_migrations_finished_total{cluster="${o.cluster}"}`;
  const finished = await queryUntil(prom, migrations, (r) => r.reduce((n, s) => n + s.value, 0) >= 1);
  await queryUntil(prom, `sum(ms2m_verifications_total{cluster="${o.cluster}"})`, (r) => (r[0]?.value ?? 0) >= 1);
  const lost = `sum(ms2m_verification_messages_lost_total{cluster="${o.cluster}"})`;
  const [verified] = await queryUntil(prom, lost, (r) => r.length === 1);
  const downtime = `histogram_quantile(0.5, sum by (le) (ms2m_migration_downtime_seconds_bucket{cluster="${o.cluster}"}))`;
  const targets = (await activeTargets(prom)).filter((t) => t.labels.cluster === o.cluster);
  say(`\n[ms2m] observed by Prometheus at ${prom} (alert rules: infra/observability/alerts.yml; dashboard: infra/observability/grafana-dashboard.json)`);
  for (const t of targets) say(`[ms2m]   ${`${t.labels.component}${t.labels.node ? ` ${t.labels.node}` : ''}`.padEnd(20)} ${t.scrapeUrl}  (${t.health})`);
  say(`[ms2m] the demo's migration in Prometheus (${report.migrationId}):`);
  say(`  query:  ${migrations}`);
  for (const s of finished) say(`  result: ${labelsText(s.metric, ['__name__', 'cluster', 'instance', 'job', 'component'])} ${s.value}`);
  say(`  query:  ${lost}`);
  say(`  result: ${verified.value} (messages its verification found lost)`);
  say(`  graph:  ${graphUrl(prom, migrations)}`);
  say(`  downtime bucket: ${graphUrl(prom, downtime)}`);
  say(`[ms2m] the series stay in Prometheus after the demo; over the last hour: last_over_time(${migrations}[1h])`);
}
