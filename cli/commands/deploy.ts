/** `ms2m deploy`: a service instance started on a node, its placement recorded; refused at once, with the reason, if it cannot serve. */
import * as path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { DeployInput, Ms2mClient } from '../../sdk';
import { num } from '../options';
import { failureText, sdkDeps, type SdkDeps } from './context';

export interface DeployOptions {
  service: string;
  node: string;
  queue: string;
  env: Record<string, string>;
  cwd?: string;
  readyMs?: number;
  workload?: string;
  namespace: string;
  container: string;
  json?: boolean;
}

export type DeployDeps = SdkDeps<Pick<Ms2mClient, 'startDeploy'>>;

/** One --env NAME=value, added to those before it. */
export function envEntry(value: string, env: Record<string, string>): Record<string, string> {
  const i = value.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`--env takes NAME=value, e.g. --env MS2M_AMQP_URL=amqp://guest:guest@127.0.0.1:5672, got "${value}"`);
  return { ...env, [value.slice(0, i)]: value.slice(i + 1) };
}

/** The deploy input: a local program (after --), or a Kubernetes workload taken under ms2m (--workload Kind/name). */
export function deployInput(command: string[], o: DeployOptions): DeployInput {
  const [kind, name] = String(o.workload ?? '').split('/');
  const spec = o.workload
    ? { runtime: 'kubernetes' as const, namespace: o.namespace, kind: kind as 'Deployment', name, container: o.container, primaryQueue: o.queue }
    : { command, env: o.env, primaryQueue: o.queue, ...(o.cwd !== undefined && { cwd: path.resolve(o.cwd) }) };
  return { service: o.service, node: o.node, spec, ...(o.readyMs !== undefined && { readyMs: o.readyMs }) };
}

export function registerDeploy(program: Command, deps: DeployDeps = sdkDeps): Command {
  const cmd = program
    .command('deploy')
    .description(
      'start a service instance on a node and record its placement; refused at once, with the reason, if the program cannot run, ' +
        'exits, does not answer ms2m control commands within --ready-ms, or consumes another queue than --queue',
    )
    .usage('--service <name> --node <node> --queue <primaryQueue> [--env K=V ...] [--cwd dir] [--ready-ms n] -- <command...>')
    .requiredOption('--service <name>', 'service name, e.g. game')
    .requiredOption('--node <node>', 'node to run it on, e.g. node-a')
    .requiredOption('--queue <primaryQueue>', 'the queue the service consumes, e.g. game.primary')
    .option('--env <K=V>', 'an environment variable of the service; repeat for more', envEntry, {})
    .option('--cwd <dir>', "the service's working directory (relative: to this directory); relative program paths resolve against it. Default: the node agent's")
    // Its range is the input schema's (readyMs), checked by the SDK with the workflow's own message.
    .option('--ready-ms <ms>', 'how long the instance has to answer ms2m control commands (default 20000)', num('--ready-ms', '20000'))
    .option('--workload <Kind/name>', 'kubernetes runtime: take this workload under ms2m, e.g. Deployment/orders (no command then)')
    .option('--namespace <ns>', 'kubernetes runtime: the workload\'s namespace', 'default')
    .option('--container <name>', 'kubernetes runtime: the container that runs the service', 'app')
    .option('--json', 'print the placement as JSON')
    .argument('[command...]', 'the program and its arguments, after --, e.g. -- node dist/examples/game/service.js');
  return cmd.action(async (command: string[], o: DeployOptions) => {
    if (!o.workload && command.length === 0) return cmd.error('deploy needs the program after -- (local runtime) or --workload Kind/name (kubernetes runtime)');
    const ms2m = await deps.connect();
    const run = await ms2m.startDeploy(deployInput(command, o));
    deps.err(`[ms2m] deploying ${o.service} on ${o.node} (workflow ${run.workflowId})…`);
    let placement;
    try {
      placement = await run.result();
    } catch (err) {
      deps.err(`[ms2m] deploy of ${o.service} refused: ${failureText(err)}`);
      return deps.exit(1);
    }
    deps.out(
      o.json
        ? JSON.stringify(placement)
        : `[ms2m] ${placement.service} deployed on ${placement.node} as instance ${placement.instanceId}, consuming ${placement.spec.primaryQueue}: ${placement.spec.runtime === 'local' ? placement.spec.command.join(' ') : `${placement.spec.kind} ${placement.spec.namespace}/${placement.spec.name}`}`,
    );
    return deps.exit(0);
  });
}
