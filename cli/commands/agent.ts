/** `ms2m agent`: the node agent of one node. */
import type { Command } from 'commander';
import type { NodeAgentOptions } from '../../runtimes/types';
import type * as NodeAgent from '../../workers/node-agent';
import { nonNegative, positive } from '../options';

export interface AgentOptions {
  node: string;
  listen?: string;
  port?: number;
  capacity?: number;
}

export interface AgentDeps {
  runNodeAgent(o: Pick<NodeAgentOptions, 'node' | 'capacity' | 'listen'>): Promise<void>;
}

/** Loaded when the command runs, so the other commands start without the worker's dependencies. */
const defaults: AgentDeps = { runNodeAgent: (o) => (require('../../workers/node-agent') as typeof NodeAgent).runNodeAgent(o) };

/** What the agent is started with: --port is short for --listen 127.0.0.1:<port>. */
export const agentOptions = (o: AgentOptions): Pick<NodeAgentOptions, 'node' | 'capacity' | 'listen'> => ({
  node: o.node,
  capacity: o.capacity,
  listen: o.listen ?? (o.port !== undefined ? `127.0.0.1:${o.port}` : undefined),
});

export function registerAgent(program: Command, deps: AgentDeps = defaults): Command {
  return program
    .command('agent')
    .description('run the node agent of one node (needs root for CRIU)')
    .requiredOption('--node <name>', 'node name, e.g. node-a')
    .option('--listen <host:port>', 'where it receives images from other nodes (default 127.0.0.1, the port it had before, else any)')
    .option('--port <port>', 'shorthand for --listen 127.0.0.1:<port>', nonNegative('--port', '7301'))
    .option('--capacity <n>', 'how many service instances the node takes (placement by rebalance and drain; default 10)', positive('--capacity', true, '10'))
    .action((o: AgentOptions) => deps.runNodeAgent(agentOptions(o)));
}
