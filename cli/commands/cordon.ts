/** `ms2m cordon` and `ms2m uncordon`: whether rebalancing and draining may place services on a node. */
import type { Command } from 'commander';
import type { Ms2mClient } from '../../sdk';
import { sdkDeps, type SdkDeps } from './context';

export type CordonDeps = SdkDeps<Pick<Ms2mClient, 'setNodeSchedulable'>>;

export function registerCordon(program: Command, deps: CordonDeps = sdkDeps): Command[] {
  return ([['cordon', false], ['uncordon', true]] as const).map(([name, schedulable]) =>
    program
      .command(name)
      .description(schedulable ? 'let rebalancing and draining place services on a node again' : 'keep rebalancing and draining from placing services on a node')
      .requiredOption('--node <name>', 'node')
      .action(async (o: { node: string }) => {
        const ms2m = await deps.connect();
        await ms2m.setNodeSchedulable(o.node, schedulable);
        deps.out(`[ms2m] ${o.node} is ${schedulable ? 'schedulable' : 'cordoned'}`);
        return deps.exit(0);
      }),
  );
}
