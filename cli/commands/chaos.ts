/** `ms2m chaos`: repeated migrations of the example services, each with a random fault; a summary at the end. */
import * as path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { FAULTS } from '../../chaos/faults';
import type * as Chaos from '../../chaos/run';
import type { ChaosOptions } from '../../chaos/run';
import { MECHANISM_LABELS, type MechanismLabel } from '../../lib/migration';
import { mechanismList, nonNegative, positive, workloadList } from '../options';
import { WORKLOADS, type WorkloadName } from '../workloads';
import { processIo, type Io } from './context';

export interface ChaosCliOptions {
  rounds: number;
  seed: number;
  rate: number;
  faults?: string[];
  services: WorkloadName[];
  mechanisms: MechanismLabel[];
  out: string;
}

export interface ChaosDeps extends Pick<Io, 'out'> {
  runChaos(o: ChaosOptions): Promise<{ clean: boolean }>;
  setExitCode(code: number): void;
}

const defaults: ChaosDeps = {
  out: processIo.out,
  // Loaded when the command runs, with the runtimes and the scenario.
  runChaos: (o) => (require('../../chaos/run') as typeof Chaos).runChaos(o),
  setExitCode: (code) => (process.exitCode = code),
};

/** Fault names from chaos/faults.ts, comma-separated. */
export function faultList(v: string): string[] {
  const names = v.split(',').map((x) => x.trim()).filter(Boolean);
  const unknown = names.filter((n) => !FAULTS.some((f) => f.name === n));
  if (unknown.length) throw new InvalidArgumentError(`unknown fault(s) ${unknown.join(', ')}; choose from ${FAULTS.map((f) => f.name).join(', ')}`);
  return names;
}

export function registerChaos(program: Command, deps: ChaosDeps = defaults): Command {
  return program
    .command('chaos')
    .description('repeated migrations of the example services (game, ledger), each with a random fault (process kills, broken image path, RabbitMQ restart, crashes, cancellation); prints a summary')
    .option('--rounds <n>', 'number of migrations', positive('--rounds', true, '20'), 20)
    .option('--seed <n>', 'seed of the fault draw (the same seed draws the same faults)', nonNegative('--seed', '42'), Date.now() % 100_000)
    .option('--rate <msgs>', 'messages per second during each migration', positive('--rate', false, '40'), 40)
    .option('--faults <names>', `only these faults, comma-separated: ${FAULTS.map((f) => f.name).join(', ')}`, faultList)
    .addOption(new Option('--services <names>', 'draw the migrated service from these, comma-separated').default([...WORKLOADS]).argParser(workloadList))
    .addOption(
      new Option('--mechanisms <list>', `draw how each image moves from these, comma-separated: ${MECHANISM_LABELS.join(', ')} (faults of one mechanism keep theirs)`)
        .default([...MECHANISM_LABELS])
        .argParser(mechanismList),
    )
    .option('--out <dir>', 'where to write rounds.csv and summary.md', path.join('chaos-results', new Date().toISOString().slice(0, 19).replace(/:/g, '-')))
    .action(async (o: ChaosCliOptions) => {
      deps.out(`[chaos] ${o.rounds} rounds, seed ${o.seed}, ${o.rate} msg/s, services ${o.services.join(', ')}, mechanisms ${o.mechanisms.join(', ')}`);
      const { clean } = await deps.runChaos({ rounds: o.rounds, seed: o.seed, rate: o.rate, faults: o.faults, workloads: o.services, mechanisms: o.mechanisms, out: o.out, log: (l) => deps.out(l) });
      deps.setExitCode(clean ? 0 : 1);
    });
}
