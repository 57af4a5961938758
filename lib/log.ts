/**
 * Structured logs of ms2m's workers (pino): JSON lines by default, pretty when stdout is a terminal
 * (MS2M_LOG_FORMAT=json|pretty overrides; MS2M_LOG_LEVEL sets the level, default info).
 *
 * One logger per process, with its component (orchestrator, agent) and node on every line. The Temporal
 * SDK's logger is routed through it (./temporal-runtime), so a workflow's and an activity's lines carry
 * what the SDK knows (workflowId, runId, activityType) and what ms2m adds through its interceptors
 * (migrationId, phase: workflows/log-context, ./activity-log-context).
 *
 * Credentials never reach a line: the password of any URL (`scheme://user:password@host`) and fields
 * named like secrets are replaced before a line is written, whatever logged them.
 */
import { Context } from '@temporalio/activity';
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

const SECRET_KEYS = /^(password|passwd|secret|token|authorization|auth|cookie|amqpUrl|amqpMgmtUrl|MS2M_AMQP_URL|MS2M_AMQP_MGMT_URL|MS2M_TRANSFER_SECRET|MS2M_REGISTRY_AUTH)$/i;
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/[^:@/\s"']+):([^@/\s"']+)@/gi;

/** `amqp://user:pw@host` → `amqp://user:***@host`, anywhere in a text. */
export const scrubText = (s: string): string => s.replace(URL_CREDENTIALS, '$1:***@');

/** A copy of `v` with URL passwords and secret-named fields masked (depth-limited; cycles cut). */
export function scrub(v: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof v === 'string') return scrubText(v);
  if (v === null || typeof v !== 'object' || depth > 8) return v;
  if (seen.has(v)) return '[cycle]';
  seen.add(v);
  if (v instanceof Error) return { type: v.name, message: scrubText(v.message), stack: v.stack ? scrubText(v.stack) : undefined };
  if (Array.isArray(v)) return v.map((x) => scrub(x, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = SECRET_KEYS.test(k) && typeof x === 'string' ? '***' : scrub(x, depth + 1, seen);
  return out;
}

function destination(): pino.DestinationStream | undefined {
  const format = process.env.MS2M_LOG_FORMAT ?? (process.stdout.isTTY ? 'pretty' : 'json');
  if (format === 'json') return undefined;
  if (format !== 'pretty') throw new Error(`MS2M_LOG_FORMAT: "${format}" is not a log format; use json or pretty`);
  return pretty({ sync: true, colorize: Boolean(process.stdout.isTTY), ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' });
}

function make(base: Record<string, unknown>): Logger {
  const opts: pino.LoggerOptions = {
    level: process.env.MS2M_LOG_LEVEL ?? 'info',
    base,
    formatters: { log: (obj) => scrub(obj) as Record<string, unknown> },
    hooks: {
      // The message itself (first string argument) is scrubbed too.
      logMethod(args, method) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? scrubText(a) : a)) as Parameters<typeof method>);
      },
    },
  };
  const dest = destination();
  return dest ? pino(opts, dest) : pino(opts);
}

let root: Logger | null = null;

/** The process's logger; `configureLogger` names the process first (a worker does at start). */
export function logger(): Logger {
  root ??= make({ pid: process.pid });
  return root;
}

export function configureLogger(base: { component: string; node?: string }): Logger {
  root = make({ ...base, pid: process.pid });
  return root;
}

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/** The Temporal SDK's logger interface, over the process's pino logger. */
export function temporalLogger(): TemporalLogger {
  const write = (level: LogLevel, message: string, meta?: LogMetadata) => {
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(meta ?? {})) if (typeof k === 'string') fields[k] = v;
    logger()[LEVELS[level] ?? 'info'](fields, message);
  };
  return {
    log: write,
    trace: (m, meta) => write('TRACE', m, meta),
    debug: (m, meta) => write('DEBUG', m, meta),
    info: (m, meta) => write('INFO', m, meta),
    warn: (m, meta) => write('WARN', m, meta),
    error: (m, meta) => write('ERROR', m, meta),
  };
}

/**
 * Where a line goes from code that runs both inside activities and outside them (a node agent's
 * helpers): inside an activity, its logger, whose lines carry the workflow, the migration and the
 * phase; outside, the process's.
 */
export function log(level: 'debug' | 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
  let ctx: Context | null = null;
  try {
    ctx = Context.current();
  } catch {
    ctx = null;
  }
  if (ctx) ctx.log[level](message, fields);
  else logger()[level](fields, message);
}

/** The fields of an error for a log line. */
export const errorFields = (err: unknown): Record<string, unknown> =>
  err instanceof Error ? { err: { type: (err as { type?: string }).type ?? err.name, message: err.message } } : { err: String(err) };
