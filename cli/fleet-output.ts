/** Rebalance, drain and schedule commands: their shared options and how their results are printed. */
import { Option, type Command } from 'commander';
import Table from 'cli-table3';
import { STRATEGIES } from '../lib/migration';
import type { MoveOutcome, RebalanceInput, RebalancePlan } from '../lib/rebalance';
import type { Ms2mClient, Ms2mRun, ScheduleDetails, ScheduleInfo } from '../sdk';
import { num } from './options';

export function rebalanceOptions(cmd: Command): Command {
  return cmd
    .option('--dry-run', 'plan only; move nothing')
    .option('--band <fraction>', 'overloaded: load above the mean by more than this fraction of it (default 0.2)', num('--band', '0.2'))
    .option('--min-excess <percent>', 'and by more than this much CPU (default 5)', num('--min-excess', '5'))
    .option('--max-migrations <n>', 'moves per run at most (default 3)', num('--max-migrations', '3'))
    .option('--concurrency <n>', 'moves at a time (default 1)', num('--concurrency', '1'))
    .option('--cooldown-ms <ms>', 'leave services placed this recently (default 600000)', num('--cooldown-ms', '600000'))
    .option('--sample-ms <ms>', 'how long CPU use is sampled (default 1000)', num('--sample-ms', '1000'))
    .addOption(new Option('--strategy <name>', 'migration strategy (default shadow)').choices([...STRATEGIES]));
}

export function rebalanceInput(o: Record<string, unknown>): RebalanceInput {
  const input: Record<string, unknown> = {
    dryRun: o.dryRun,
    band: o.band,
    minExcessPercent: o.minExcess,
    maxMigrations: o.maxMigrations,
    concurrency: o.concurrency,
    cooldownMs: o.cooldownMs,
    sampleMs: o.sampleMs,
    strategy: o.strategy,
  };
  return Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined));
}

export const table = (head: string[]) => new Table({ head, style: { head: [], border: [] } });
export const secs = (since: number) => `[${((Date.now() - since) / 1000).toFixed(1).padStart(6)} s]`;

export function formatPlan(plan: RebalancePlan): string {
  const nodes = table(['node', 'schedulable', 'load (CPU %)', 'instances', 'capacity']);
  for (const n of plan.nodes) nodes.push([n.node, n.schedulable ? 'yes' : 'no (cordoned)', n.load, n.instances, n.capacity]);
  const out = [`mean load ${plan.meanLoad} %, overloaded above ${plan.upperLoad} %`, nodes.toString()];
  if (!plan.moves.length) out.push('no moves planned');
  else {
    const moves = table(['service', 'from', 'to', 'CPU %', 'loads before (from / to)', 'after']);
    for (const m of plan.moves) moves.push([m.service, m.from, m.to, m.cpuPercent, `${m.before.from} / ${m.before.to}`, `${m.after.from} / ${m.after.to}`]);
    out.push('planned moves:', moves.toString());
  }
  for (const k of plan.kept) out.push(`  kept ${k.service} on ${k.node}: ${k.reason}`);
  return out.join('\n');
}

export function formatOutcomes(outcomes: MoveOutcome[]): string {
  const t = table(['service', 'from', 'to', 'outcome', 'total ms', 'downtime ms', 'workflow / error']);
  for (const m of outcomes) t.push([m.service, m.from, m.to, m.outcome, m.totalMs ?? '—', m.downtimeMs ?? '—', m.error ?? m.workflowId]);
  return t.toString();
}

/** While a rebalance or drain runs, a line per stage change of each migration it started. */
export async function waitShowingMoves<T>(ms2m: Pick<Ms2mClient, 'listMigrations'>, run: Pick<Ms2mRun<T>, 'workflowId' | 'result'>, say: (l: string) => void): Promise<T> {
  const t0 = Date.now();
  const seen = new Map<string, string>();
  const timer = setInterval(async () => {
    try {
      for (const m of await ms2m.listMigrations({ parentWorkflowId: run.workflowId })) {
        const line = `${m.service} ${m.sourceNode ?? '?'} → ${m.targetNode}: ${m.phase ?? 'starting'}`;
        if (seen.get(m.workflowId) !== line) say(`  ${secs(t0)} ${line}`);
        seen.set(m.workflowId, line);
      }
    } catch {
      // Visibility trails the workflows; the next poll catches up.
    }
  }, 1000);
  try {
    return await run.result();
  } finally {
    clearInterval(timer);
  }
}

export const when = (d?: Date) => (d ? d.toISOString().replace('T', ' ').slice(0, 19) : '—');

export function formatSchedule(s: ScheduleInfo | ScheduleDetails): string {
  const out = [`${s.scheduleId}: every ${s.everyMs !== undefined ? `${s.everyMs / 1000} s` : '?'}${s.paused ? ', PAUSED' : ''}${s.note ? ` (${s.note})` : ''}`];
  if ('input' in s) out.push(`  input ${JSON.stringify(s.input)} on task queue ${s.taskQueue}; ${s.numActionsTaken} runs, ${s.numActionsSkippedOverlap} skipped (overlap)`);
  if ('runningWorkflowIds' in s && s.runningWorkflowIds.length) out.push(`  running: ${s.runningWorkflowIds.join(', ')}`);
  for (const a of s.recentActions) out.push(`  ran ${when(a.takenAt)}: ${a.workflowId}`);
  out.push(`  next: ${s.nextActionTimes.slice(0, 3).map((d) => when(d)).join(', ') || '—'}`);
  return out.join('\n');
}
