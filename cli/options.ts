/**
 * The command line's value parsers and shared options. Numbers and durations are read by zod schemas,
 * never by hand: `zodArg` turns a schema of the option's text into a commander argument parser, whose
 * first failure becomes commander's "option '--x <v>' argument 'bad' is invalid. <the rule>" error.
 */
import { InvalidArgumentError, Option } from 'commander';
import { z } from 'zod';
import { MECHANISM_LABELS, STRATEGIES, TRANSFER_MODES, type MechanismLabel, type MigrationProgress } from '../lib/migration';
import { WORKLOADS, type WorkloadName } from './workloads';
import { durationText, shownMs } from '../lib/duration';

/** A commander argument parser from a zod schema of the option's text; the schema's first message is the error. */
export function zodArg<T>(schema: z.ZodType<T, z.ZodTypeDef, string>): (value: string) => T {
  return (value: string): T => {
    const r = schema.safeParse(value);
    if (!r.success) throw new InvalidArgumentError(r.error.issues[0].message);
    return r.data;
  };
}

/** A decimal number as people type it: no hex, no empty text, no Infinity (all of which `Number()` would take). */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$/i;

/** The option's text read as a number; `message` if it is not one. */
export const numberText = (message: string) => z.string().trim().regex(DECIMAL, message).transform(Number);

/** A number > 0 (a whole one if `integer`). */
export function positive(name: string, integer = false, example = '50') {
  const message = `${name} must be a positive ${integer ? 'integer' : 'number'}, e.g. ${example}`;
  const n = z.number().positive(message);
  return zodArg(numberText(message).pipe(integer ? n.int(message) : n));
}

/** A whole number ≥ 0. */
export function nonNegative(name: string, example = '10') {
  const message = `${name} must be a whole number ≥ 0, e.g. ${example}`;
  return zodArg(numberText(message).pipe(z.number().int(message).min(0, message)));
}

/**
 * A number checked only as a number. For options that become a field of a workflow's input: the SDK checks
 * the input with the workflow's own schema (lib/), and refuses a value out of range with the message the
 * workflow would give, naming the field.
 */
export const num = (name: string, example: string) => zodArg(numberText(`${name} must be a number, e.g. ${example}`));

/** A duration with its unit (ms, s, m, h, d), e.g. "90s", "10m", "500ms": in milliseconds, within [min, max]. */
export function duration(name: string, o: { min: number; max?: number; example: string }) {
  const rule = `${name} must be a duration of at least ${shownMs(o.min)}${o.max !== undefined ? ` and at most ${shownMs(o.max)}` : ''}, e.g. ${o.example}`;
  return zodArg(durationText({ min: o.min, ...(o.max !== undefined ? { max: o.max } : {}), rule }));
}

export function workloadList(v: string): WorkloadName[] {
  const names = v.split(',').map((x) => x.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(WORKLOADS as readonly string[]).includes(n));
  if (unknown.length || names.length === 0) throw new InvalidArgumentError(`unknown service(s) ${unknown.join(', ') || '(none given)'}; choose from ${WORKLOADS.join(', ')}`);
  return names as WorkloadName[];
}
/** A comma-separated list of mechanism combinations (lib/migration.ts, MECHANISM_LABELS). */
export function mechanismList(v: string): MechanismLabel[] {
  const names = v.split(',').map((x) => x.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(MECHANISM_LABELS as readonly string[]).includes(n));
  if (unknown.length || names.length === 0) throw new InvalidArgumentError(`--mechanisms: unknown ${unknown.join(', ') || '(none given)'}; choose from ${MECHANISM_LABELS.join(', ')}`);
  return names as MechanismLabel[];
}

export const strategyOption = () => new Option('--strategy <name>', 'migration strategy').choices([...STRATEGIES]).default('shadow');
/** The mechanisms of a migration (lib/migration.ts, MechanismsSchema). */
export const transferOption = () =>
  new Option('--transfer <mode>', 'how the image moves: files (dump to files, then send them) or stream (the pages go to the target during the dump)').choices([...TRANSFER_MODES]).default('files');
export const lazyOption = () => new Option('--lazy', 'post-copy: restore the copy before its memory has arrived; it fetches the rest from the source node while it replays');

/** Prints a line per stage change, and the lag while replaying (the demo, whose log lines interleave with it). */
export function progressPrinter(write: (line: string) => void) {
  let last = '';
  return (p: MigrationProgress) => {
    const line = `${p.stage}${p.stage === 'replay' && p.lag !== null ? ` (lag ${p.lag})` : ''}`;
    if (line !== last) write(`  [${(p.elapsedMs / 1000).toFixed(2).padStart(6)} s] ${line}`);
    last = line;
  };
}
