/** `ms2m deploy`: the spec it builds (a local program or a Kubernetes workload), what it prints, refusals. */
import * as path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, RetryState } from '@temporalio/common';
import { describe, expect, it, vi } from 'vitest';
import { registerDeploy } from '../../../cli/commands/deploy';
import { Ms2mClient, type DeployInput, type Placement } from '../../../sdk';
import { invalidArgument, run, sdk } from './harness';

const placement = (input: DeployInput): Placement =>
  ({ service: input.service, node: input.node, instanceId: `${input.service}-0a1b2c3d`, spec: { runtime: 'local', env: {}, ...input.spec } }) as unknown as Placement;

async function deploy(args: string[], o: { refusal?: Error } = {}) {
  const startDeploy = vi.fn(async (input: DeployInput) => ({
    workflowId: `deploy-${input.service}`,
    result: async () => {
      if (o.refusal) throw o.refusal;
      return placement(input);
    },
  }));
  const deps = sdk({ startDeploy });
  const parsed = await run((p) => registerDeploy(p, deps as never), ['deploy', ...args]);
  return { ...parsed, deps, input: startDeploy.mock.calls[0]?.[0] };
}

describe('ms2m deploy', () => {
  it('deploys the program after -- with its environment and working directory', async () => {
    const { input, deps, error } = await deploy(['--service', 'game', '--node', 'node-a', '--queue', 'game.primary', '--env', 'A=1', '--env', 'URL=amqp://x?a=b', '--cwd', 'srv', '--ready-ms', '5000', '--', 'node', 'service.js', '--fast']);
    expect(error).toBeUndefined();
    expect(input).toEqual({
      service: 'game',
      node: 'node-a',
      spec: { command: ['node', 'service.js', '--fast'], env: { A: '1', URL: 'amqp://x?a=b' }, primaryQueue: 'game.primary', cwd: path.resolve('srv') },
      readyMs: 5000,
    });
    expect(deps.errLines).toEqual(['[ms2m] deploying game on node-a (workflow deploy-game)…']);
    expect(deps.outLines).toEqual(['[ms2m] game deployed on node-a as instance game-0a1b2c3d, consuming game.primary: node service.js --fast']);
    expect(deps.exits).toEqual([0]);
  });

  it('takes a Kubernetes workload under ms2m with --workload, and prints the placement as JSON with --json', async () => {
    const { input, deps } = await deploy(['--service', 'orders', '--node', 'node-b', '--queue', 'orders.primary', '--workload', 'Deployment/orders', '--namespace', 'shop', '--json']);
    expect(input).toEqual({ service: 'orders', node: 'node-b', spec: { runtime: 'kubernetes', namespace: 'shop', kind: 'Deployment', name: 'orders', container: 'app', primaryQueue: 'orders.primary' } });
    expect(JSON.parse(deps.outLines[0])).toMatchObject({ service: 'orders', instanceId: 'orders-0a1b2c3d' });
  });

  it('prints the refusal with its type and exits 1', async () => {
    const refusal = new WorkflowFailedError('Workflow execution failed', ApplicationFailure.nonRetryable('spec.command[0]: "nosuchprog" is not an executable on node-a', 'InvalidSpec'), RetryState.NON_RETRYABLE_FAILURE);
    const { deps } = await deploy(['--service', 'game', '--node', 'node-a', '--queue', 'x.primary', '--', 'nosuchprog'], { refusal });
    expect(deps.errLines.at(-1)).toBe('[ms2m] deploy of game refused: InvalidSpec: spec.command[0]: "nosuchprog" is not an executable on node-a');
    expect(deps.outLines).toEqual([]);
    expect(deps.exits).toEqual([1]);
  });

  it('refuses a deploy with neither a program nor a workload, and bad --env and --ready-ms values', async () => {
    const none = await deploy(['--service', 'game', '--node', 'node-a', '--queue', 'game.primary']);
    expect(none.error?.message).toBe('deploy needs the program after -- (local runtime) or --workload Kind/name (kubernetes runtime)');
    expect(none.stderr).toContain('Usage: ms2m deploy --service <name> --node <node> --queue <primaryQueue>');
    expect(none.input).toBeUndefined();
    expect((await deploy(['--service', 'game', '--node', 'node-a', '--queue', 'q', '--env', 'DEBUG', '--', 'x'])).error?.message).toBe(
      invalidArgument('--env <K=V>', 'DEBUG', '--env takes NAME=value, e.g. --env MS2M_AMQP_URL=amqp://guest:guest@127.0.0.1:5672, got "DEBUG"'),
    );
    expect((await deploy(['--service', 'game', '--node', 'node-a', '--queue', 'q', '--ready-ms', 'soon', '--', 'x'])).error?.message).toBe(
      invalidArgument('--ready-ms <ms>', 'soon', '--ready-ms must be a number, e.g. 20000'),
    );
    expect((await deploy(['--node', 'node-a', '--queue', 'q', '--', 'x'])).error?.message).toBe("error: required option '--service <name>' not specified");
  });

  it('leaves the range of --ready-ms to the SDK, which refuses it with the workflow input schema\'s message', async () => {
    const start = vi.fn();
    const deps = sdk(new Ms2mClient({ workflow: { start } } as never, { taskQueue: 'q' }));
    await expect(run((p) => registerDeploy(p, deps), ['deploy', '--service', 'game', '--node', 'node-a', '--queue', 'x.primary', '--ready-ms', '5', '--', 'sleep', '1'])).rejects.toThrow(
      'invalid deployService input: readyMs: readyMs must be at least 1000 ms, got 5',
    );
    expect(start).not.toHaveBeenCalled();
  });
});
