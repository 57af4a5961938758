/**
 * Using the ms2m SDK from another program: migrate a service, follow it, print the outcome, list the
 * service's migrations. Against running workers; Temporal's address and the task queue come from the
 * environment (MS2M_TEMPORAL_ADDRESS, MS2M_TASK_QUEUE) as for the workers.
 *
 *   node dist/examples/sdk-example.js --service game --to node-b
 */
import { Command } from 'commander';
import { Ms2mClient, Ms2mInputError, type MigrationProgress } from '../sdk';

async function main(): Promise<void> {
  const o = new Command('sdk-example')
    .requiredOption('--service <name>', 'service to migrate')
    .requiredOption('--to <node>', 'target node')
    .option('--strategy <name>', 'stop-and-copy or shadow', 'shadow')
    .parse()
    .opts<{ service: string; to: string; strategy: 'shadow' | 'stop-and-copy' }>();

  const ms2m = await Ms2mClient.connect();
  try {
    const migration = await ms2m.startMigration({ service: o.service, targetNode: o.to, strategy: o.strategy });
    console.log(`started ${migration.workflowId}`);

    let stage = '';
    const report = await migration.result({
      // Called with each answer of the `progress` query while the migration runs.
      onProgress: (p: MigrationProgress) => {
        if (p.stage !== stage) console.log(`  ${(p.elapsedMs / 1000).toFixed(1).padStart(5)} s  ${p.stage}${p.stage === 'replay' && p.lag !== null ? ` (lag ${p.lag})` : ''}`);
        stage = p.stage;
      },
    });
    console.log(
      `${report.service} ${report.sourceNode} → ${report.targetNode}: ${report.outcome}` +
        (report.failure ? ` (${report.failure.phase}: ${report.failure.message})` : '') +
        `, total ${report.totalMs} ms, downtime ${report.downtimeMs} ms, replayed ${report.replay.replayed}`,
    );

    console.log(`migrations of ${o.service}:`);
    for (const m of await ms2m.listMigrations({ service: o.service, limit: 10 })) {
      console.log(`  ${m.startTime.toISOString()}  ${m.workflowId}  ${m.sourceNode ?? '?'} → ${m.targetNode ?? '?'}  ${m.phase ?? '?'}  ${m.status}`);
    }
    process.exitCode = report.outcome === 'completed' ? 0 : 1;
  } finally {
    await ms2m.close();
  }
}

main().catch((err: Error) => {
  console.error(err instanceof Ms2mInputError ? err.message : `error: ${err.message}`);
  process.exitCode = 1;
});
