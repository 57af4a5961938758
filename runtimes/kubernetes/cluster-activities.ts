/**
 * Cluster activities of the kubernetes runtime, on the orchestrator's task queue: nodes are the cluster's
 * Nodes (a cordoned node, `spec.unschedulable`, is what ms2m calls unschedulable, so `kubectl cordon` and
 * ms2m agree), placements are where the services' pods run (./workloads).
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { V1Node } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { FAILURE } from '../../lib/contracts';
import type { ClusterActivities, KubernetesSpec, NodeInfo, Placement } from '../types';
import { nodeTaskQueue } from '../shared/task-queues';
import { seg, type KubeApi } from './kube-api';
import { holdStatefulSet } from './statefulsets';
import { commitService, findService, listServices, uncommitService } from './workloads';

export interface KubeClusterConfig {
  api: KubeApi;
  taskQueue: string;
  /** The namespaces whose workloads ms2m manages (its Roles are bound there). */
  namespaces: string[];
}

const ready = (n: V1Node): boolean => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

export function nodeInfoOf(n: V1Node, taskQueue: string): NodeInfo {
  const name = n.metadata!.name!;
  return {
    node: name,
    taskQueue: nodeTaskQueue(taskQueue, name),
    capacity: Number(n.status?.allocatable?.pods ?? 0),
    schedulable: !n.spec?.unschedulable && ready(n),
  };
}

function kubeSpec(p: Placement): KubernetesSpec {
  if (p.spec.runtime !== 'kubernetes') {
    throw ApplicationFailure.nonRetryable(`spec.runtime: ${p.service} has a ${p.spec.runtime} spec; this cluster runs kubernetes workloads`, FAILURE.InvalidSpec);
  }
  return p.spec;
}

export function createKubeClusterActivities({ api, taskQueue, namespaces }: KubeClusterConfig): ClusterActivities {
  return {
    async locateService({ service }) {
      const p = await findService(api, namespaces, service);
      if (!p) {
        throw ApplicationFailure.nonRetryable(
          `service: no workload labelled ms2m.io/service=${service} with a running pod in namespace(s) ${namespaces.join(', ')}; deploy it (ms2m deploy with a kubernetes spec) or check the name`,
          FAILURE.ServiceNotFound,
        );
      }
      return p;
    },

    findPlacement: ({ service }) => findService(api, namespaces, service),

    commitPlacement: (p) => commitService(api, p, kubeSpec(p)),

    async removePlacement({ service }) {
      const p = await findService(api, namespaces, service);
      if (p) await uncommitService(api, p, kubeSpec(p));
    },

    async node({ node }) {
      const n = await api.find<V1Node>(`/api/v1/nodes/${seg(node)}`);
      return n ? nodeInfoOf(n, taskQueue) : null;
    },

    async listNodes() {
      return (await api.get<{ items: V1Node[] }>('/api/v1/nodes')).items.map((n) => nodeInfoOf(n, taskQueue));
    },

    listPlacements: () => listServices(api, namespaces),

    async setNodeSchedulable({ node, schedulable }) {
      const n = await api.find<V1Node>(`/api/v1/nodes/${seg(node)}`);
      if (!n) throw ApplicationFailure.nonRetryable(`node: the cluster has no node "${node}" (kubectl get nodes lists them)`, FAILURE.InvalidInput);
      await api.patch(`/api/v1/nodes/${seg(node)}`, { spec: { unschedulable: schedulable ? null : true } });
    },

    async holdController({ service }) {
      const p = await findService(api, namespaces, service);
      if (!p?.keepsName) return;
      const spec = kubeSpec(p);
      await holdStatefulSet(api, spec.namespace, spec.name, service, p.instanceId);
    },
  };
}
