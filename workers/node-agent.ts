/**
 * A node agent: the worker on one node's own task queue that runs the node activities of the configured
 * runtime (MS2M_RUNTIME), and the handoff's broker activities (replay, fence) for the copies on its node. Usage: node-agent --node <name> [--capacity N] [--listen host:port]; the node
 * may also come from MS2M_NODE (e.g. the downward API).
 */
import { Command, InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { createBrokerActivities, warmBrokerConnection } from '../activities/broker';
import { createCombinedNodeActivities } from '../activities/node-combined';
import type { BrokerActivities } from '../activities/types';
import { nameField } from '../lib/input-fields';
import { loadRuntime } from '../runtimes';
import type { NodeAgentOptions } from '../runtimes/types';
import { withActivityMetrics } from '../lib/activity-telemetry';
import { logger } from '../lib/log';
import { startTelemetry } from './telemetry';

function nodeName(value: string): string {
  const r = nameField('--node', 'node-a').safeParse(value);
  if (!r.success) throw new InvalidArgumentError(`${r.error.issues[0].message}, got "${value}"`);
  return value;
}

const CAPACITY = z.coerce.number({ invalid_type_error: 'must be a whole number ≥ 1' }).int('must be a whole number ≥ 1').min(1, 'must be a whole number ≥ 1');

function capacity(value: string): number {
  const r = CAPACITY.safeParse(value.trim() === '' ? NaN : value);
  if (!r.success) throw new InvalidArgumentError(`--capacity ${r.error.issues[0].message}, got "${value}"`);
  return r.data;
}

export async function runNodeAgent(opts: NodeAgentOptions): Promise<void> {
  const runtime = await loadRuntime();
  // Before the first connection: the Temporal runtime's logger and metrics are set when it is made.
  const telemetry = await startTelemetry('agent', opts.node);
  const broker = createBrokerActivities(opts.node);
  const agent = await runtime.startNodeAgent({
    ...opts,
    shared: broker,
    combine: (acts) => createCombinedNodeActivities(acts, acts as unknown as BrokerActivities),
    instrument: (acts) => withActivityMetrics(opts.node, acts),
    interceptors: telemetry.interceptors,
  });
  warmBrokerConnection();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => agent.stop());
  await agent.run();
  await telemetry.close();
}

if (require.main === module) {
  const program = new Command('node-agent')
    .option('--node <name>', 'the node this agent serves', nodeName, process.env.MS2M_NODE)
    .option('--capacity <n>', 'how many service instances the node takes', capacity)
    .option('--listen <host:port>', 'where it receives images from other nodes (local runtime)')
    .parse();
  const o = program.opts<{ node?: string; capacity?: number; listen?: string }>();
  if (!o.node) program.error('--node <name> is required (or set MS2M_NODE)');
  runNodeAgent({ node: nodeName(o.node!), capacity: o.capacity, listen: o.listen }).catch((err) => {
    logger().fatal({ err: (err as Error).message }, 'node agent failed');
    process.exit(1);
  });
}
