/**
 * deployService / undeployService: place a service instance on a node (or remove it) and record the
 * placement that migrateService starts from.
 */
import { ApplicationFailure, uuid4, workflowInfo } from '@temporalio/workflow';
import { DeployInputSchema, type DeployInput } from '../lib/migration';
import { parseInput } from './input';
import type { Placement } from '../activities/types';
import { brokerLocal, cluster, onNode } from './activity-proxies';

export async function deployService(rawInput: DeployInput): Promise<Placement> {
  const { service, node, spec } = parseInput('deployService', DeployInputSchema, rawInput);
  const existing = await cluster.findPlacement({ service });
  if (existing) {
    throw ApplicationFailure.nonRetryable(`service: ${service} is already deployed on ${existing.node} as ${existing.instanceId}; undeploy it first`, 'InvalidInput');
  }
  if (!(await cluster.nodeExists({ node }))) {
    throw ApplicationFailure.nonRetryable(`node: there is no node "${node}"; start its agent (ms2m agent --node ${node})`, 'InvalidInput');
  }
  const { workflowId, runId } = workflowInfo();
  await cluster.acquireLock({ service, workflowId, runId });
  try {
    const instanceId = `${service}-${uuid4().slice(0, 8)}`;
    await onNode(node).startInstance({ service, instanceId, spec });
    // Deployed means serving: the instance answers once it is connected and consuming.
    await brokerLocal.instanceStatus({ instanceId, timeoutMs: 30_000 });
    const placement: Placement = { service, node, instanceId, spec, updatedAt: Date.now() };
    await cluster.commitPlacement(placement);
    return placement;
  } finally {
    await cluster.releaseLock({ service, workflowId, runId });
  }
}

export async function undeployService(rawInput: { service: string }): Promise<{ stopped: boolean }> {
  const service = rawInput?.service;
  if (typeof service !== 'string' || !service) throw ApplicationFailure.nonRetryable('service: name the service to undeploy, e.g. {"service": "game"}', 'InvalidInput');
  const placement = await cluster.findPlacement({ service });
  if (!placement) return { stopped: false };
  const { workflowId, runId } = workflowInfo();
  await cluster.acquireLock({ service, workflowId, runId });
  try {
    const r = await onNode(placement.node).stopInstance({ instanceId: placement.instanceId });
    await cluster.removePlacement({ service });
    return r;
  } finally {
    await cluster.releaseLock({ service, workflowId, runId });
  }
}
