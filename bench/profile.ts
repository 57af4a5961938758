/**
 * Where the time of one migration goes, from Temporal's own event timestamps: how long activities waited
 * to be picked up (dispatch), how long each kind of activity ran, and what is left for workflow tasks.
 * Parallel activities are counted once (interval union), so the parts add up to the workflow's wall time.
 */
import type { Client } from '@temporalio/client';
import { labelOf, type MigrationReport } from '../lib/migration';

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
  /** Temporal's share: dispatch plus workflow tasks and the gaps between them, as a fraction of the total. */
  orchestrationShare?: number;
}

/** A local activity's marker carries two instants of its run; which field holds which varies, so the earlier is its start. */
function localActivity(details: Record<string, { payloads?: Array<{ data?: Uint8Array | null }> | null }> | null | undefined): { type: string; from: number; to: number } | null {
  const raw = details?.data?.payloads?.[0]?.data;
  if (!raw) return null;
  try {
    const d = JSON.parse(Buffer.from(raw).toString()) as Record<string, unknown>;
    const a = ms((d.complete_time ?? d.completeTime) as Parameters<typeof ms>[0]);
    const b = ms((d.original_schedule_time ?? d.originalScheduleTime) as Parameters<typeof ms>[0]);
    const type = String(d.activity_type ?? d.activityType ?? '');
    return type && a && b ? { type, from: Math.min(a, b), to: Math.max(a, b) } : null;
  } catch {
    return null;
  }
}

export async function profileMigration(client: Client, report: MigrationReport): Promise<Profile> {
  const history = await client.workflow.getHandle(report.workflowId).fetchHistory();
  const events = history.events ?? [];
  const scheduled = new Map<string, { type: string; at: number }>();
  const started = new Map<string, number>();
  const waiting: Interval[] = [];
  const running = new Map<string, Interval[]>();
  const local = new Map<string, Interval[]>();
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
    const la = e.markerRecordedEventAttributes?.markerName === 'core_local_activity' ? localActivity(e.markerRecordedEventAttributes.details as never) : null;
    if (la) local.set(la.type, [...(local.get(la.type) ?? []), { from: la.from, to: la.to }]);
  }
  const total = last - first;
  const work = new Map<string, Interval[]>([...[...running].map(([t, is]) => [`activity ${t}`, is] as const), ...[...local].map(([t, is]) => [`local activity ${t}`, is] as const)]);
  const allWork = union([...work.values()].flat());
  const dispatch = minus(union(waiting), allWork);
  const rows: Profile['rows'] = [];
  const mb = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;
  const streamed = report.streamedBytes ? `; ${mb(report.streamedBytes)} of pages streamed during the dump` : '';
  const lazy = report.lazy ? `; ${mb(report.lazy.bytesLeft)} left for the lazy phase (${report.lazy.ms} ms, beside the replay)` : '';
  const notes: Record<string, string> = {
    // The local runtime's combined steps (one activity per node): the same work as the three below.
    'activity checkpointAndSend': `CRIU dump ${report.tools?.dumpMs ?? 0} ms, source frozen ${report.freezeMs} ms; transfer ${report.tools?.transferMs ?? 0} ms${streamed}`,
    'activity restoreAndReplay': `CRIU restore ${report.tools?.restoreMs ?? 0} ms, the copy's standby answer and the start of its replay${lazy}`,
    'activity checkpoint': `CRIU dump ${report.tools.dumpMs} ms, source frozen ${report.freezeMs} ms`,
    'activity transfer': `${(report.checkpointBytes / 1048576).toFixed(1)} MB image, one stream, SHA-256 on both sides`,
    'activity restore': `CRIU restore ${report.tools.restoreMs} ms`,
    'local activity instanceStatus': 'after the restore: the copy reconnects and answers as a standby; later: the post-condition',
    'activity replayUntil': `copy replayed ${report.replay.replayed} messages`,
    'activity fenceAndSwap': `downtime ${report.downtimeMs} ms: fence RPC, catch-up, digest compare, activate`,
  };
  // Each part's time, counting only what no earlier-listed (longer) part already covers.
  let covered: Interval[] = [];
  const byTime = [...work.entries()].sort((a, b) => length(union(b[1])) - length(union(a[1])));
  for (const [part, is] of byTime) {
    const own = minus(union(is), covered);
    covered = union([...covered, ...own]);
    rows.push({ part, ms: length(own), note: notes[part] });
  }
  const rest = Math.max(0, total - length(allWork) - length(dispatch));
  rows.push({ part: 'Temporal dispatch (scheduled → started, nothing running)', ms: length(dispatch) });
  rows.push({ part: 'workflow tasks and the rest (no activity running)', ms: rest });
  return {
    title: `${report.strategy} migration ${report.migrationId}${report.mechanisms ? `, mechanism ${labelOf(report.mechanisms)}` : ''} (${total} ms from first to last history event)`,
    rows,
    orchestrationShare: total > 0 ? (length(dispatch) + rest) / total : 0,
  };
}
