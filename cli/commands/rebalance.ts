/** `ms2m rebalance`: services moved off overloaded nodes, the plan and each move's outcome printed. */
import type { Command } from 'commander';
import type { Ms2mClient } from '../../sdk';
import { formatOutcomes, formatPlan, rebalanceInput, rebalanceOptions, waitShowingMoves } from '../fleet-output';
import { sayFor, sdkDeps, type SdkDeps } from './context';

export type RebalanceDeps = SdkDeps<Pick<Ms2mClient, 'startRebalance' | 'listMigrations'>>;

export function registerRebalance(program: Command, deps: RebalanceDeps = sdkDeps): Command {
  return rebalanceOptions(program.command('rebalance'))
    .description('move services off overloaded nodes (plans from measured CPU load), printing the plan and each move\'s outcome')
    .option('--json', 'print the RebalanceResult as JSON')
    .action(async (o: Record<string, unknown>) => {
      const say = sayFor(deps, o.json as boolean | undefined);
      const ms2m = await deps.connect();
      const run = await ms2m.startRebalance(rebalanceInput(o));
      say(`[ms2m] rebalance ${run.workflowId} started${o.dryRun ? ' (dry run)' : ''}; measuring load…`);
      const result = await waitShowingMoves(ms2m, run, say);
      if (o.json) deps.out(JSON.stringify(result));
      else {
        say(formatPlan(result.plan));
        if (!result.dryRun && result.outcomes.length) say(`outcomes:\n${formatOutcomes(result.outcomes)}`);
      }
      return deps.exit(result.outcomes.every((m) => m.outcome === 'completed') ? 0 : 1);
    });
}
