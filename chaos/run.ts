/**
 * `ms2m chaos`: repeated migrations of the example services, each with a fault and a service drawn at
 * random (seeded) from chaos/faults.ts and cli/workloads.ts, judged like the fault tests. Prints a line per round and a summary per fault, and
 * writes rounds.csv and summary.md.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Table from 'cli-table3';
import { loadRuntime } from '../runtimes';
import { ensureStack } from '../lib/stack';
import { WORKLOADS, type WorkloadName } from '../cli/workloads';
import { FAULTS, faultNamed, type Fault } from './faults';
import { runRound, type RoundResult } from './round';
import { MECHANISM_LABELS, labelOf, mechanismsOf, type MechanismLabel } from '../lib/migration';


export interface ChaosOptions {
  rounds: number;
  seed: number;
  rate: number;
  /** Only these faults (names from chaos/faults.ts); all of them by default. */
  faults?: string[];
  /** Which example services to draw from (default: all). */
  workloads?: WorkloadName[];
  /** Which mechanisms to draw from for faults that do not fix them (default: all). */
  mechanisms?: MechanismLabel[];
  out: string;
  log: (line: string) => void;
}

/** mulberry32: a small seeded generator, so a chaos run can be repeated exactly. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Row {
  round: number;
  fault: string;
  service: WorkloadName;
  mechanisms: MechanismLabel;
  outcome: string;
  cancelled: boolean;
  published: number;
  lost: number;
  duplicated: number;
  duplicate_outputs: number;
  resent_outputs: number;
  state_match: boolean;
  /** The ledger's positions compared between instances, message by message (empty for the game). */
  positions_compared: number | '';
  handoff: string;
  total_ms: number;
  downtime_ms: number;
  failure: string;
  violations: string;
}

function rowOf(round: number, r: RoundResult): Row {
  const rep = r.result.report;
  const v = rep.verification!;
  return {
    round,
    fault: r.fault.name,
    service: r.workload,
    mechanisms: labelOf(r.mechanisms),
    outcome: rep.sourceLost ? 'completed (adopted)' : rep.outcome,
    cancelled: r.result.cancelled,
    published: v.published,
    lost: v.lost,
    duplicated: v.duplicated,
    duplicate_outputs: v.duplicateOutputs,
    resent_outputs: v.resentOutputs,
    state_match: v.finalStateMatchesProducers,
    positions_compared: v.order ? v.order.compared : '',
    handoff: rep.accounting.handoff,
    total_ms: rep.totalMs,
    downtime_ms: rep.downtimeMs,
    failure: rep.failure ? `${rep.failure.phase}: ${rep.failure.type}` : '',
    violations: r.violations.join('; '),
  };
}

const csvCell = (v: unknown) => (/[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));

function summarize(rows: Row[]): { table: string; markdown: string } {
  const byFault = new Map<string, Row[]>();
  for (const r of rows) byFault.set(r.fault, [...(byFault.get(r.fault) ?? []), r]);
  const head = ['fault', 'rounds', 'migrated', 'rolled back', 'published', 'lost', 'duplicated', 'dup outputs', 'violations'];
  const lines: string[][] = [];
  for (const [fault, rs] of [...byFault].sort()) {
    lines.push([
      fault,
      String(rs.length),
      String(rs.filter((r) => r.outcome.startsWith('completed')).length),
      String(rs.filter((r) => r.outcome === 'rolled-back').length),
      String(rs.reduce((a, r) => a + r.published, 0)),
      String(rs.reduce((a, r) => a + r.lost, 0)),
      String(rs.reduce((a, r) => a + r.duplicated, 0)),
      String(rs.reduce((a, r) => a + r.duplicate_outputs, 0)),
      String(rs.filter((r) => r.violations).length),
    ]);
  }
  const sum = (f: (r: Row) => number) => String(rows.reduce((a, r) => a + f(r), 0));
  lines.push([
    'all',
    String(rows.length),
    String(rows.filter((r) => r.outcome.startsWith('completed')).length),
    String(rows.filter((r) => r.outcome === 'rolled-back').length),
    sum((r) => r.published),
    sum((r) => r.lost),
    sum((r) => r.duplicated),
    sum((r) => r.duplicate_outputs),
    String(rows.filter((r) => r.violations).length),
  ]);
  const t = new Table({ head, style: { head: [], border: [] } });
  for (const l of lines) t.push(l);
  const md = [`| ${head.join(' | ')} |`, `|${head.map(() => ' --- ').join('|')}|`, ...lines.map((l) => `| ${l.join(' | ')} |`)].join('\n');
  return { table: t.toString(), markdown: md };
}

export async function runChaos(o: ChaosOptions): Promise<{ rows: Row[]; clean: boolean }> {
  const pool: Fault[] = o.faults?.length ? o.faults.map(faultNamed) : FAULTS;
  const services: WorkloadName[] = o.workloads?.length ? o.workloads : [...WORKLOADS];
  const draws: MechanismLabel[] = o.mechanisms?.length ? o.mechanisms : [...MECHANISM_LABELS];
  await ensureStack();
  mkdirSync(o.out, { recursive: true });
  const runtime = await loadRuntime();
  const home = mkdtempSync(path.join(os.tmpdir(), 'ms2m-chaos-'));
  const stamp = Date.now().toString(36);
  const cluster = await runtime.startCluster({ nodes: ['node-a', 'node-b'], home, taskQueue: `ms2m-chaos-${stamp}`, log: o.log });
  const next = random(o.seed);
  const rows: Row[] = [];
  const t0 = Date.now();
  try {
    for (let round = 1; round <= o.rounds; round++) {
      const fault = pool[Math.floor(next() * pool.length)];
      const service = services[Math.floor(next() * services.length)];
      const drawn = draws[Math.floor(next() * draws.length)];
      const r = await runRound(cluster, fault, `chaos${round}-${stamp}`, { rate: o.rate, workload: service, mechanisms: mechanismsOf(drawn) });
      const row = rowOf(round, r);
      rows.push(row);
      const eta = ((Date.now() - t0) / round) * (o.rounds - round);
      o.log(
        `[chaos] round ${round}/${o.rounds} ${fault.name} (${service}, ${row.mechanisms}): ${row.outcome}${row.failure ? ` (${row.failure})` : ''}, ` +
          `${row.published} published, lost ${row.lost}, duplicated ${row.duplicated}, dup outputs ${row.duplicate_outputs}` +
          `${row.violations ? ` — VIOLATED: ${row.violations}` : ''} | ETA ${Math.round(eta / 1000)} s`,
      );
      if (r.violations.length) writeFileSync(path.join(o.out, `round-${round}.log`), r.log.join('\n'));
      writeFileSync(
        path.join(o.out, 'rounds.csv'),
        [Object.keys(row).join(','), ...rows.map((x) => Object.values(x).map(csvCell).join(','))].join('\n') + '\n',
      );
    }
  } finally {
    await cluster.stop();
    runtime.reap(home);
  }
  const { table, markdown } = summarize(rows);
  const clean = rows.every((r) => !r.violations);
  o.log(`\n${table}`);
  o.log(clean ? `[chaos] ${rows.length} rounds: every one migrated or rolled back, nothing lost or duplicated` : '[chaos] VIOLATIONS: see above and round-*.log');
  writeFileSync(
    path.join(o.out, 'summary.md'),
    `# ms2m chaos: ${rows.length} rounds, seed ${o.seed}, ${o.rate} msg/s, services ${services.join(', ')}, mechanisms ${draws.join(', ')}\n\n${markdown}\n\n${Math.round((Date.now() - t0) / 1000)} s in all.\n`,
  );
  o.log(`[chaos] results in ${o.out} (rounds.csv, summary.md)`);
  return { rows, clean };
}
