/** The command line's value parsers, shared options and the progress printer. */
import { InvalidArgumentError, Option } from 'commander';
import { MECHANISM_LABELS, STRATEGIES, TRANSFER_MODES, type MechanismLabel, type MigrationProgress } from '../lib/migration';
import { WORKLOADS, type WorkloadName } from './workloads';

export function positive(name: string, integer = false) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`${name} must be a positive ${integer ? 'integer' : 'number'}, e.g. 50`);
    }
    return n;
  };
}
export function nonNegative(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number ≥ 0`);
    return n;
  };
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

/** Prints a line per stage change, and the lag while replaying. */
export function progressPrinter(write: (line: string) => void) {
  let last = '';
  return (p: MigrationProgress) => {
    const line = `${p.stage}${p.stage === 'replay' && p.lag !== null ? ` (lag ${p.lag})` : ''}`;
    if (line !== last) write(`  [${(p.elapsedMs / 1000).toFixed(2).padStart(6)} s] ${line}`);
    last = line;
  };
}

export const num = (v: string) => Number(v);
