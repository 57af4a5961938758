/** `ms2m migrations`: migrations, newest first, from Temporal visibility. */
import type { Command } from 'commander';
import type { Ms2mClient } from '../../sdk';
import { table, when } from '../fleet-output';
import { positive } from '../options';
import { sdkDeps, type SdkDeps } from './context';

export interface MigrationsOptions {
  service?: string;
  node?: string;
  phase?: string;
  running?: boolean;
  limit: number;
  json?: boolean;
}

export type MigrationsDeps = SdkDeps<Pick<Ms2mClient, 'listMigrations'>>;

export function registerMigrations(program: Command, deps: MigrationsDeps = sdkDeps): Command {
  return program
    .command('migrations')
    .description('list migrations, newest first (from Temporal visibility)')
    .option('--service <name>', 'of this service')
    .option('--node <name>', 'from or to this node')
    .option('--phase <stage>', 'now in (or ended in) this stage, e.g. replay, done, rolled-back')
    .option('--running', 'only running ones')
    .option('--limit <n>', 'at most this many', positive('--limit', true, '20'), 50)
    .option('--json', 'as JSON')
    .action(async (o: MigrationsOptions) => {
      const list = await (await deps.connect()).listMigrations({ service: o.service, node: o.node, phase: o.phase, running: o.running ? true : undefined, limit: o.limit });
      if (o.json) deps.out(JSON.stringify(list));
      else if (!list.length) deps.out('no migrations found');
      else {
        const t = table(['workflow', 'service', 'from', 'to', 'strategy', 'stage', 'status', 'started', 'ended']);
        for (const m of list) t.push([m.workflowId, m.service ?? '?', m.sourceNode ?? '?', m.targetNode ?? '?', m.strategy ?? '?', m.phase ?? '?', m.status, when(m.startTime), when(m.closeTime)]);
        deps.out(t.toString());
      }
      return deps.exit(0);
    });
}
