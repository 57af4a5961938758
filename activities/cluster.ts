/**
 * Cluster activities of the local runtime: placements, nodes and the per-service migration lock, kept in
 * the ClusterStore. They run on the orchestrator's task queue.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ClusterStore, DEFAULT_CAPACITY } from '../runtime/cluster-store';
import type { ClusterActivities, Placement } from './types';

export function createClusterActivities(store: ClusterStore, client: Client): ClusterActivities {
  async function holderIsRunning(workflowId: string, runId: string): Promise<boolean> {
    try {
      const d = await client.workflow.getHandle(workflowId, runId).describe();
      return d.status.name === 'RUNNING';
    } catch {
      return false;
    }
  }

  return {
    async acquireLock({ service, workflowId, runId }) {
      for (let attempt = 0; attempt < 2; attempt++) {
        const holder = store.tryLock({ service, workflowId, runId, takenAt: Date.now() });
        if (!holder) return;
        if (holder.workflowId === workflowId && holder.runId === runId) return;
        if (holder.workflowId && (await holderIsRunning(holder.workflowId, holder.runId))) {
          throw ApplicationFailure.nonRetryable(
            `service ${service} is already being migrated by workflow ${holder.workflowId}; wait for it to finish or cancel it`,
            'MigrationInProgress',
          );
        }
        // The holder ended without releasing (it crashed or was terminated): the lock is stale.
        store.unlock(service);
      }
      throw ApplicationFailure.retryable(`could not take the migration lock of ${service}`, 'LockContention');
    },

    async releaseLock({ service, workflowId, runId }) {
      const holder = store.tryLock({ service, workflowId, runId, takenAt: Date.now() });
      // tryLock took it if nobody held it; either way it is ours or free now, unless another run holds it.
      if (!holder || (holder.workflowId === workflowId && holder.runId === runId)) store.unlock(service);
    },

    async locateService({ service }) {
      const p = store.placement<Placement>(service);
      if (!p) {
        throw ApplicationFailure.nonRetryable(
          `service: no service named "${service}" is deployed; deploy it first (ms2m deploy --service ${service} --node <node> --queue <primary queue> -- <command…>) or check the name`,
          'ServiceNotFound',
        );
      }
      return p;
    },

    async findPlacement({ service }) {
      return store.placement<Placement>(service);
    },

    async commitPlacement(placement) {
      store.setPlacement(placement.service, placement);
    },

    async removePlacement({ service }) {
      store.removePlacement(service);
    },

    async nodeExists({ node }) {
      return store.node(node) !== null;
    },

    async listNodes() {
      return store.nodes().map((n) => ({ node: n.node, capacity: n.capacity ?? DEFAULT_CAPACITY, schedulable: n.schedulable !== false }));
    },

    async listPlacements() {
      return store.placements<Placement>();
    },

    async migratingServices() {
      return store.placements<Placement>().filter((p) => store.lockHolder(p.service) !== null).map((p) => p.service);
    },

    async setNodeSchedulable({ node, schedulable }) {
      if (!store.setSchedulable(node, schedulable)) {
        throw ApplicationFailure.nonRetryable(`node: there is no node "${node}"; start its agent (ms2m agent --node ${node})`, 'InvalidInput');
      }
    },
  };
}
