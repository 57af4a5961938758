/**
 * Activity stubs with the timeouts and retry policies of each kind of work. Node activities go to the
 * node's own task queue; a node whose agent is gone never picks them up, which the schedule-to-start
 * timeout turns into a prompt failure instead of a hang.
 */
import { proxyActivities, proxyLocalActivities, workflowInfo } from '@temporalio/workflow';
import type { BrokerActivities, ClusterActivities, NodeActivities } from '../activities/types';
import { nodeTaskQueue } from '../lib/migration';

const NON_RETRYABLE = ['InvalidInput', 'ServiceNotFound', 'MigrationInProgress', 'ControlRefused', 'InstanceNotFound', 'ImageMissing', 'NoBindings'];

const ORCHESTRATOR_RETRY = { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE };

/**
 * Cluster bookkeeping and short broker commands run as local activities, in the orchestrator worker
 * itself: they need no node, and each saved server round trip is tens of milliseconds of a migration.
 */
export const cluster = proxyLocalActivities<ClusterActivities>({ startToCloseTimeout: '30s', retry: ORCHESTRATOR_RETRY });
export const brokerLocal = proxyLocalActivities<BrokerActivities>({ startToCloseTimeout: '90s', retry: ORCHESTRATOR_RETRY });

/** Long broker activities that report progress by heartbeat (replay, fence-and-swap) stay regular activities. */
export const broker = proxyActivities<BrokerActivities>({ startToCloseTimeout: '5m', heartbeatTimeout: '20s', retry: ORCHESTRATOR_RETRY });

export function onNode(node: string) {
  return proxyActivities<NodeActivities>({
    taskQueue: nodeTaskQueue(workflowInfo().taskQueue, node),
    scheduleToStartTimeout: '15s',
    startToCloseTimeout: '5m',
    heartbeatTimeout: '30s',
    retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
  });
}
