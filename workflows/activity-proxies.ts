/**
 * Activity stubs with the timeouts and retry policies of each kind of work, built from a migration's
 * `timeouts` input. Node activities go to the node's own task queue; a node whose agent is gone never
 * picks them up, which the schedule-to-start timeout turns into a prompt failure instead of a hang.
 */
import { ActivityCancellationType, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { BrokerActivities, LockActivities } from '../activities/types';
import type { CombinedNodeActivities } from '../activities/node-combined';
import type { ClusterActivities, NodeActivities, NodeInfo } from '../runtimes/types';
import { TimeoutsSchema, type Timeouts } from '../lib/migration';
import { NON_RETRYABLE } from '../lib/contracts';


const ORCHESTRATOR_RETRY = { initialInterval: '200ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE };

export function activitiesFor(t: Timeouts) {
  return {
    /**
     * Cluster bookkeeping and short broker commands run as local activities, in the orchestrator worker
     * itself: they need no node, and each saved server round trip is tens of milliseconds of a migration.
     */
    cluster: proxyLocalActivities<ClusterActivities>({ startToCloseTimeout: '30s', retry: ORCHESTRATOR_RETRY }),
    lock: proxyLocalActivities<LockActivities>({ startToCloseTimeout: '30s', retry: ORCHESTRATOR_RETRY }),
    brokerLocal: proxyLocalActivities<BrokerActivities>({
      startToCloseTimeout: Math.max(90_000, t.copyReadyMs + 10_000),
      retry: ORCHESTRATOR_RETRY,
    }),
    /**
     * The handoff's long broker activities (replay, fence-and-swap, adoption), run by the agent of the
     * node where the copy lives and reporting progress by heartbeat. They get two attempts: the workflow
     * decides what a failure means (an instance lost, or the broker still away). Cleanup waits for a
     * cancelled activity to stop, so no late step undoes the rollback.
     */
    handoffOn(node: Pick<NodeInfo, 'taskQueue'>) {
      return proxyActivities<BrokerActivities>({
        taskQueue: node.taskQueue,
        scheduleToStartTimeout: t.nodeScheduleToStartMs,
        startToCloseTimeout: t.catchUpMs + t.unreachableMs + 60_000,
        heartbeatTimeout: t.heartbeatMs,
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        retry: { ...ORCHESTRATOR_RETRY, maximumAttempts: 2 },
      });
    },
    /**
     * Checks polled in a loop until something holds (an instance answers; the post-condition): the loop is
     * their retry, so each gets one attempt, bounded in seconds, and a failure is known as soon as it happens.
     */
    probe: proxyLocalActivities<BrokerActivities>({ startToCloseTimeout: t.controlReplyMs + 5000, retry: { maximumAttempts: 1 } }),
    probeNode(node: Pick<NodeInfo, 'taskQueue'>) {
      return proxyActivities<NodeActivities>({
        taskQueue: node.taskQueue,
        scheduleToStartTimeout: t.nodeScheduleToStartMs,
        startToCloseTimeout: '5s',
        retry: { maximumAttempts: 1 },
      });
    },
    /** The node's own task queue comes from the runtime's cluster side (NodeInfo), not from a naming rule. */
    onNode(node: Pick<NodeInfo, 'taskQueue'>) {
      return proxyActivities<NodeActivities & CombinedNodeActivities>({
        taskQueue: node.taskQueue,
        scheduleToStartTimeout: t.nodeScheduleToStartMs,
        startToCloseTimeout: t.nodeActivityMs,
        heartbeatTimeout: t.heartbeatMs,
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        retry: { initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '5s', maximumAttempts: 4, nonRetryableErrorTypes: NON_RETRYABLE },
      });
    },
  };
}

/** With the default timeouts, for the workflows that take none (deploy, undeploy). */
export const { cluster, lock, brokerLocal, probe, probeNode, onNode } = activitiesFor(TimeoutsSchema.parse(undefined));
