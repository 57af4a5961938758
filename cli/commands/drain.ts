/** `ms2m drain`: a node cordoned and every service migrated off it, a report per service. */
import { Option, type Command } from 'commander';
import { STRATEGIES, type Strategy } from '../../lib/migration';
import type { Ms2mClient } from '../../sdk';
import { formatOutcomes, waitShowingMoves } from '../fleet-output';
import { num } from '../options';
import { sayFor, sdkDeps, type SdkDeps } from './context';

export interface DrainOptions {
  node: string;
  concurrency?: number;
  strategy?: Strategy;
  json?: boolean;
}

export type DrainDeps = SdkDeps<Pick<Ms2mClient, 'startDrain' | 'listMigrations'>>;

export function registerDrain(program: Command, deps: DrainDeps = sdkDeps): Command {
  return program
    .command('drain')
    .description('cordon a node and migrate every service off it, printing a report per service')
    .requiredOption('--node <name>', 'node to drain')
    // Its range is the input schema's (concurrency), checked by the SDK with the workflow's own message.
    .option('--concurrency <n>', 'migrations at a time (default 1)', num('--concurrency', '2'))
    .addOption(new Option('--strategy <name>', 'migration strategy (default shadow)').choices([...STRATEGIES]))
    .option('--json', 'print the DrainReport as JSON')
    .action(async (o: DrainOptions) => {
      const say = sayFor(deps, o.json);
      const ms2m = await deps.connect();
      const run = await ms2m.startDrain({ node: o.node, ...(o.concurrency !== undefined && { concurrency: o.concurrency }), ...(o.strategy && { strategy: o.strategy }) });
      say(`[ms2m] drain ${run.workflowId} started`);
      const report = await waitShowingMoves(ms2m, run, say);
      if (o.json) deps.out(JSON.stringify(report));
      else {
        say(report.services.length ? formatOutcomes(report.services) : `nothing moved off ${report.node}`);
        if (report.stranded.length) say(`stranded (no schedulable node with room; still on ${report.node}): ${report.stranded.join(', ')}`);
        say(`${report.node} stays cordoned; \`ms2m uncordon --node ${report.node}\` takes it back (${((report.endedAt - report.startedAt) / 1000).toFixed(1)} s)`);
      }
      return deps.exit(report.stranded.length || report.services.some((m) => m.outcome !== 'completed') ? 1 : 0);
    });
}
