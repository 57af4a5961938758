/**
 * deployService / undeployService: place a service instance on a node (or remove it) and record the
 * placement that migrateService starts from.
 *
 * A deploy is refused, with the field to fix, as soon as the cause can be known: a program that cannot run
 * (InvalidSpec, by the node agent before it spawns anything), a process that exits before it answers
 * (InstanceExited), one that runs but never answers the control protocol within readyMs (NotReady), or one
 * that consumes another queue than spec.primaryQueue (InvalidSpec). A refused deploy leaves nothing: the
 * instance is stopped, no placement is recorded and the lock is free.
 */
import { ActivityFailure, ApplicationFailure, CancellationScope, isCancellation, log, uuid4, workflowInfo } from '@temporalio/workflow';
import { DeployInputSchema, UndeployInputSchema, type DeployInput, type UndeployInput } from '../lib/migration';
import { instanceExitedMessage, notReadyMessage, queueMismatchMessage } from '../lib/deploy-refusals';
import { controlQueueName } from '../service/names';
import type { InstanceStatus } from '../service/protocol';
import { parseInput } from './input';
import type { NodeInfo, Placement } from '../runtimes/types';
import { brokerLocal, cluster, lock, onNode, probe, probeNode } from './activity-proxies';
import { FAILURE } from '../lib/contracts';

/** One status request per step: short enough that a process that died is noticed within about a second. */
const STEP_MS = 1000;

/** A definite refusal from an activity (a bad spec, a process that exited) fails the workflow as itself, not as "activity failed". */
function asRefusal(err: unknown): unknown {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.nonRetryable) {
    return ApplicationFailure.nonRetryable(err.cause.message, err.cause.type);
  }
  return err;
}

/**
 * Waits until the instance answers a status request, asking its node between requests whether the process
 * is still there: one that exited is refused at once, one that lives but stays silent after readyMs too.
 */
async function awaitReady(node: NodeInfo, instanceId: string, readyMs: number): Promise<InstanceStatus> {
  const startedAt = Date.now();
  const deadline = startedAt + readyMs;
  for (;;) {
    const left = deadline - Date.now();
    try {
      return await probe.instanceStatus({ instanceId, timeoutMs: Math.max(200, Math.min(STEP_MS, left)) });
    } catch (err) {
      if (isCancellation(err)) throw err;
    }
    let health;
    try {
      health = await probeNode(node).instanceHealth({ instanceId });
    } catch (err) {
      if (isCancellation(err)) throw err;
      log.warn(`deploy: the node agent of ${node.node} did not report on ${instanceId}`, { error: String(err) });
    }
    if (health && !health.alive) throw ApplicationFailure.nonRetryable(instanceExitedMessage(health), FAILURE.InstanceExited);
    if (Date.now() >= deadline) {
      const h = health ?? { instanceId, node: node.node, startedAt, alive: true, exit: null, logs: '(unknown: the node agent did not answer)', logTail: [] };
      throw ApplicationFailure.nonRetryable(notReadyMessage(h, readyMs), FAILURE.NotReady);
    }
  }
}

export async function deployService(rawInput: DeployInput): Promise<Placement> {
  const { service, node, spec, readyMs } = parseInput('deployService', DeployInputSchema, rawInput);
  const existing = await cluster.findPlacement({ service });
  if (existing) {
    throw ApplicationFailure.nonRetryable(`service: ${service} is already deployed on ${existing.node} as ${existing.instanceId}; undeploy it first (ms2m undeploy --service ${service})`, FAILURE.InvalidInput);
  }
  const target = await cluster.node({ node });
  if (!target) throw ApplicationFailure.nonRetryable(`node: there is no node "${node}"; start its agent (ms2m agent --node ${node})`, FAILURE.InvalidInput);
  const { workflowId, runId } = workflowInfo();
  await lock.acquireLock({ service, workflowId, runId });
  const instanceId = `${service}-${uuid4().slice(0, 8)}`;
  let startedId = instanceId;
  let placed = false;
  try {
    // A runtime names the instance it started (kubernetes: the workload's pod), which may not be the one asked for.
    const started = await onNode(target).startInstance({ service, instanceId, spec }).catch((err) => Promise.reject(asRefusal(err)));
    startedId = started.instanceId;
    // Deployed means serving: the instance answers once it is connected and consuming.
    const status = await awaitReady(target, started.instanceId, readyMs);
    if (status.input.queue !== spec.primaryQueue) throw ApplicationFailure.nonRetryable(queueMismatchMessage(status.input.queue, spec.primaryQueue), FAILURE.InvalidSpec);
    const placement: Placement = { service, node, instanceId: started.instanceId, spec, updatedAt: Date.now() };
    await cluster.commitPlacement(placement);
    placed = true;
    return placement;
  } finally {
    await CancellationScope.nonCancellable(async () => {
      if (!placed) {
        // Also after a failed start: the agent may have spawned the process before it failed.
        try {
          await onNode(target).stopInstance({ instanceId: startedId });
          // Declared by the status requests (and by the instance); nobody will use it again.
          await brokerLocal.deleteQueue({ queue: controlQueueName(startedId) });
        } catch (err) {
          log.warn(`deploy refused, but cleaning up ${instanceId} on ${node} failed`, { error: String(err) });
        }
      }
      await lock.releaseLock({ service, workflowId, runId });
    });
  }
}

export async function undeployService(rawInput: UndeployInput): Promise<{ stopped: boolean; placement: Placement | null }> {
  const { service } = parseInput('undeployService', UndeployInputSchema, rawInput);
  const placement = await cluster.findPlacement({ service });
  if (!placement) return { stopped: false, placement: null };
  const { workflowId, runId } = workflowInfo();
  const node = await cluster.node({ node: placement.node });
  if (!node) throw ApplicationFailure.nonRetryable(`${service} is placed on ${placement.node}, which is not a node any more; start its agent (ms2m agent --node ${placement.node})`, FAILURE.NodeUnreachable);
  await lock.acquireLock({ service, workflowId, runId });
  try {
    const r = await onNode(node).stopInstance({ instanceId: placement.instanceId });
    await cluster.removePlacement({ service });
    return { ...r, placement };
  } finally {
    await lock.releaseLock({ service, workflowId, runId });
  }
}
