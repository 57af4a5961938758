/** `ms2m undeploy`: a service's instance stopped and its placement removed. */
import type { Command } from 'commander';
import type { Ms2mClient } from '../../sdk';
import { sdkDeps, type SdkDeps } from './context';

export type UndeployDeps = SdkDeps<Pick<Ms2mClient, 'undeploy'>>;

export function registerUndeploy(program: Command, deps: UndeployDeps = sdkDeps): Command {
  return program
    .command('undeploy')
    .description("stop a service's instance and remove its placement")
    .requiredOption('--service <name>', 'service to remove')
    .action(async (o: { service: string }) => {
      const { stopped, placement } = await (await deps.connect()).undeploy(o.service);
      if (!placement) {
        deps.err(`[ms2m] no service named "${o.service}" is deployed; nothing to undeploy`);
        return deps.exit(1);
      }
      deps.out(`[ms2m] ${o.service} undeployed: instance ${placement.instanceId} on ${placement.node} ${stopped ? 'stopped' : 'had already exited'}`);
      return deps.exit(0);
    });
}
