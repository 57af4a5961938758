/** `ms2m undeploy`: removes a service, saying what was stopped; exits 1 for a service that is not deployed. */
import { describe, expect, it, vi } from 'vitest';
import { registerUndeploy } from '../../../cli/commands/undeploy';
import type { Placement } from '../../../sdk';
import { run, sdk } from './harness';

async function undeploy(args: string[], answer: { stopped: boolean; placement: Placement | null }) {
  const client = { undeploy: vi.fn(async (_service: string) => answer) };
  const deps = sdk(client);
  return { ...(await run((p) => registerUndeploy(p, deps), ['undeploy', ...args])), deps, client };
}

const placed = { service: 'game', node: 'node-a', instanceId: 'game-0a1b2c3d' } as Placement;

describe('ms2m undeploy', () => {
  it('undeploys the service and says which instance stopped', async () => {
    const { deps, client } = await undeploy(['--service', 'game'], { stopped: true, placement: placed });
    expect(client.undeploy).toHaveBeenCalledWith('game');
    expect(deps.outLines).toEqual(['[ms2m] game undeployed: instance game-0a1b2c3d on node-a stopped']);
    expect(deps.exits).toEqual([0]);
  });

  it('says when the instance had already exited', async () => {
    const { deps } = await undeploy(['--service', 'game'], { stopped: false, placement: placed });
    expect(deps.outLines).toEqual(['[ms2m] game undeployed: instance game-0a1b2c3d on node-a had already exited']);
  });

  it('exits 1 for a service that is not deployed', async () => {
    const { deps } = await undeploy(['--service', 'nope'], { stopped: false, placement: null });
    expect(deps.errLines).toEqual(['[ms2m] no service named "nope" is deployed; nothing to undeploy']);
    expect(deps.outLines).toEqual([]);
    expect(deps.exits).toEqual([1]);
  });

  it('needs --service', async () => {
    const { error, client } = await undeploy([], { stopped: false, placement: null });
    expect(error?.message).toBe("error: required option '--service <name>' not specified");
    expect(client.undeploy).not.toHaveBeenCalled();
  });
});
