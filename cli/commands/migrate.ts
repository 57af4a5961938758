/** `ms2m migrate`: one migration of a deployed service, shown live (cli/watch-view.ts) until its report. */
import type { Command } from 'commander';
import { loadConfig } from '../../lib/config';
import type { MigrationProgress, Strategy, TransferMode } from '../../lib/migration';
import type { Ms2mClient } from '../../sdk';
import { lazyOption, nonNegative, strategyOption, transferOption } from '../options';
import { formatReport } from '../report';
import { WatchView } from '../watch-view';
import { sdkDeps, type SdkDeps } from './context';

export interface MigrateOptions {
  service: string;
  to: string;
  strategy: Strategy;
  transfer: TransferMode;
  lazy?: boolean;
  threshold: number;
  cutoffMs: number;
  stallMs: number;
  json?: boolean;
}

export type MigrateDeps = SdkDeps<Pick<Ms2mClient, 'startMigration'>>;

export function registerMigrate(program: Command, deps: MigrateDeps = sdkDeps): Command {
  return program
    .command('migrate')
    .description('migrate a deployed service to another node and wait for the report')
    .requiredOption('--service <name>', 'service to move')
    .requiredOption('--to <node>', 'target node')
    .addOption(strategyOption())
    .addOption(transferOption())
    .addOption(lazyOption())
    .option('--threshold <msgs>', 'replay threshold', nonNegative('--threshold'), 10)
    .option('--cutoff-ms <ms>', 'replay cutoff', nonNegative('--cutoff-ms', '120000'), 120_000)
    .option('--stall-ms <ms>', 'watch the lag trend this long, then fence a copy that is not converging (0: never)', nonNegative('--stall-ms', '3000'), 3_000)
    .option('--json', 'print the report as JSON')
    .action((o: MigrateOptions) => migrate(o, deps));
}

/** The progress goes to stderr (bars on a terminal, else a line per stage), the report to stdout. */
export async function migrate(o: MigrateOptions, deps: MigrateDeps): Promise<void> {
  const ms2m = await deps.connect();
  const handle = await ms2m.startMigration({
    service: o.service,
    targetNode: o.to,
    strategy: o.strategy,
    replay: { threshold: o.threshold, cutoffMs: o.cutoffMs, stallMs: o.stallMs },
    mechanisms: { transfer: o.transfer, lazy: Boolean(o.lazy) },
  });
  const view = new WatchView({ stream: deps.stderr });
  let last: MigrationProgress | null = null;
  try {
    const report = await handle.result({
      onProgress: (p) => {
        last = p;
        view.update(handle.workflowId, p);
      },
    });
    view.end(handle.workflowId, last, report);
    view.stop();
    deps.out(o.json ? JSON.stringify(report) : formatReport(report, loadConfig().temporalUi));
    return deps.exit(report.outcome === 'completed' ? 0 : 1);
  } finally {
    view.stop();
  }
}
