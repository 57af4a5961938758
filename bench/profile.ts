/**
 * Where the time of one migration goes, from Temporal's own event timestamps: how long activities waited
 * to be picked up (dispatch), how long each kind of activity ran, and what is left for workflow tasks.
 * Parallel activities are counted once (interval union), so the parts add up to the workflow's wall time.
 */
import type { Client } from '@temporalio/client';
import type { MigrationReport } from '../lib/migration';

interface Interval {
  from: number;
  to: number;
}

function union(intervals: Interval[]): Interval[] {
  const sorted = intervals.filter((i) => i.to > i.from).sort((a, b) => a.from - b.from);
  const out: Interval[] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last && i.from <= last.to) last.to = Math.max(last.to, i.to);
    else out.push({ ...i });
  }
  return out;
}

const length = (is: Interval[]) => is.reduce((a, i) => a + (i.to - i.from), 0);

/** The part of `a` not covered by `b` (both unions). */
function minus(a: Interval[], b: Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const i of a) {
    let cur = i.from;
    for (const j of b) {
      if (j.to <= cur || j.from >= i.to) continue;
      if (j.from > cur) out.push({ from: cur, to: j.from });
      cur = Math.max(cur, j.to);
    }
    if (cur < i.to) out.push({ from: cur, to: i.to });
  }
  return out;
}

const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined): number =>
  t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0;

export interface Profile {
  title: string;
  rows: Array<{ part: string; ms: number; note?: string }>;
}

export async function profileMigration(client: Client, report: MigrationReport): Promise<Profile> {
  const history = await client.workflow.getHandle(report.workflowId).fetchHistory();
  const events = history.events ?? [];
  const scheduled = new Map<string, { type: string; at: number }>();
  const started = new Map<string, number>();
  const waiting: Interval[] = [];
  const running = new Map<string, Interval[]>();
  let first = Infinity;
  let last = 0;
  for (const e of events) {
    const at = ms(e.eventTime);
    first = Math.min(first, at);
    last = Math.max(last, at);
    const id = String(e.eventId);
    if (e.activityTaskScheduledEventAttributes) scheduled.set(id, { type: e.activityTaskScheduledEventAttributes.activityType?.name ?? '?', at });
    const st = e.activityTaskStartedEventAttributes;
    if (st) {
      const s = scheduled.get(String(st.scheduledEventId));
      if (s) waiting.push({ from: s.at, to: at });
      started.set(String(st.scheduledEventId), at);
    }
    const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes;
    if (done) {
      const key = String(done.scheduledEventId);
      const s = scheduled.get(key);
      const from = started.get(key);
      if (s && from !== undefined) running.set(s.type, [...(running.get(s.type) ?? []), { from, to: at }]);
    }
  }
  const total = last - first;
  const allRunning = union([...running.values()].flat());
  const dispatch = minus(union(waiting), allRunning);
  const rows: Profile['rows'] = [];
  const notes: Record<string, string> = {
    checkpoint: `CRIU dump ${report.tools.dumpMs} ms, source frozen ${report.freezeMs} ms`,
    transfer: `HTTP with SHA-256 per file, ${(report.checkpointBytes / 1048576).toFixed(1)} MB`,
    restore: `CRIU restore ${report.tools.restoreMs} ms, then the copy reconnects`,
    replayUntil: `copy replayed ${report.replay.replayed} messages`,
    fenceAndSwap: `downtime ${report.downtimeMs} ms: fence RPC, catch-up, digest compare, activate`,
  };
  // Each activity type's running time, counting only what no earlier-listed type already covers.
  let covered: Interval[] = [];
  const byTime = [...running.entries()].sort((a, b) => length(union(b[1])) - length(union(a[1])));
  for (const [type, is] of byTime) {
    const own = minus(union(is), covered);
    covered = union([...covered, ...own]);
    rows.push({ part: `activity ${type}`, ms: length(own), note: notes[type] });
  }
  rows.push({ part: 'Temporal dispatch (scheduled → started, nothing running)', ms: length(dispatch) });
  rows.push({ part: 'workflow tasks and the rest', ms: Math.max(0, total - length(allRunning) - length(dispatch)) });
  return { title: `${report.strategy} migration ${report.migrationId} (${total} ms from first to last history event)`, rows };
}
