/**
 * A node agent's activities observed: each one timed by name and outcome, and the tools inside (CRIU's
 * dump and restore, the image transfer) measured from the activities' own results and logged as one line
 * each, the operator's record of the step.
 */
import { log } from './log';
import { metrics } from './metrics';

const errorType = (err: unknown): string => {
  const t = (err as { type?: unknown }).type;
  return typeof t === 'string' && /^[A-Za-z]{1,40}$/.test(t) ? t : 'Error';
};

export function withActivityMetrics<T extends object>(node: string, activities: T): T {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(activities)) {
    if (typeof fn !== 'function') continue;
    out[name] = async (...args: unknown[]) => {
      const end = metrics.nodeActivityDuration.startTimer({ node, activity: name });
      try {
        const result: unknown = await (fn as (...a: unknown[]) => Promise<unknown>)(...args);
        end({ outcome: 'ok' });
        observeTools(node, name, result);
        return result;
      } catch (err) {
        end({ outcome: 'error' });
        metrics.nodeActivityFailures.inc({ node, activity: name, type: errorType(err) });
        throw err;
      }
    };
  }
  return out as T;
}

/** The tools' figures, as metrics and as one line each in the node's log (an operator's record of the step). */
function observeTools(node: string, activity: string, result: unknown): void {
  const r = (result ?? {}) as Record<string, unknown>;
  const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const mb = (b: number | null) => `${((b ?? 0) / 1024 / 1024).toFixed(1)} MB`;
  const ms = (v: unknown) => `${Math.round(num(v) ?? 0)} ms`;
  if (activity === 'checkpoint') {
    if (num(r.dumpMs) !== null) metrics.criuDump.observe({ node }, num(r.dumpMs)! / 1000);
    if (num(r.freezeMs) !== null) metrics.criuFreeze.observe({ node }, num(r.freezeMs)! / 1000);
    log('info', `checkpoint: ${mb(num(r.bytes))} in ${ms(r.dumpMs)}, source frozen ${ms(r.freezeMs)}`, { bytes: r.bytes, dumpMs: r.dumpMs, freezeMs: r.freezeMs });
  } else if (activity === 'transfer') {
    if (num(r.ms) !== null) metrics.transferDuration.observe({ node }, num(r.ms)! / 1000);
    if (num(r.bytes) !== null) metrics.transferBytes.inc({ node }, num(r.bytes)!);
    log('info', `transfer: ${mb(num(r.bytes))} in ${ms(r.ms)}`, { bytes: r.bytes, ms: r.ms, files: r.files });
  } else if (activity === 'restore' && num(r.restoreMs) !== null) {
    metrics.criuRestore.observe({ node }, num(r.restoreMs)! / 1000);
    log('info', `restore: running in ${ms(r.restoreMs)}`, { restoreMs: r.restoreMs });
  }
}
