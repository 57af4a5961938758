/**
 * Cluster activities of the local runtime: placements and nodes, kept in the ClusterStore. They run on the
 * orchestrator's task queue.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { ClusterActivities, Placement } from '../types';
import { normalizePlacement } from '../placement';
import { ClusterStore, nodeInfo } from './cluster-store';
import { FAILURE } from '../../lib/contracts';

export function createClusterActivities(store: ClusterStore): ClusterActivities {
  const placement = (service: string): Placement | null => normalizePlacement(store.placement<Placement>(service));
  return {
    async locateService({ service }) {
      const p = placement(service);
      if (!p) {
        throw ApplicationFailure.nonRetryable(
          `service: no service named "${service}" is deployed; deploy it first (ms2m deploy --service ${service} --node <node> --queue <primary queue> -- <command…>) or check the name`,
          FAILURE.ServiceNotFound,
        );
      }
      return p;
    },

    async findPlacement({ service }) {
      return placement(service);
    },

    async commitPlacement(p) {
      store.setPlacement(p.service, p);
    },

    async removePlacement({ service }) {
      store.removePlacement(service);
    },

    async node({ node }) {
      const n = store.node(node);
      return n ? nodeInfo(n) : null;
    },

    async listNodes() {
      return store.nodes().map(nodeInfo);
    },

    async listPlacements() {
      return store.placements<Placement>().map((p) => normalizePlacement(p)!);
    },

    async setNodeSchedulable({ node, schedulable }) {
      if (!store.setSchedulable(node, schedulable)) {
        throw ApplicationFailure.nonRetryable(`node: there is no node "${node}"; start its agent (ms2m agent --node ${node})`, FAILURE.InvalidInput);
      }
    },

    // No local instance is known by name to a controller: there is nothing to hold.
    async holdController() {},
  };
}
