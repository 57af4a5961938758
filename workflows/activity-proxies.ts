/**
 * Activity stubs with the timeouts and retry policies of each kind of work. Node activities go to the
 * node's own task queue; a node whose agent is gone never picks them up, which the schedule-to-start
 * timeout turns into a prompt failure instead of a hang.
 */
import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { BrokerActivities, ClusterActivities, NodeActivities } from '../activities/types';
import { nodeTaskQueue } from '../lib/migration';

const NON_RETRYABLE = ['InvalidInput', 'ServiceNotFound', 'MigrationInProgress', 'ControlRefused', 'InstanceNotFound', 'ImageMissing', 'NoBindings'];

export const cluster = proxyActivities<ClusterActivities>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '200ms', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
});

export const broker = proxyActivities<BrokerActivities>({
  startToCloseTimeout: '5m',
  heartbeatTimeout: '20s',
  retry: { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
});

export function onNode(node: string) {
  return proxyActivities<NodeActivities>({
    taskQueue: nodeTaskQueue(workflowInfo().taskQueue, node),
    scheduleToStartTimeout: '15s',
    startToCloseTimeout: '5m',
    heartbeatTimeout: '30s',
    retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
  });
}
