import type { V1Pod } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { ANNOTATION_SOURCE, LABEL_COPY_FOR, LABEL_ON_EVICTION } from './workloads';

/**
 * The copy's pod: the source's, bound to the copy's node, with the checkpoint image for the restored container
 * and none of the source's labels (no controller may count it before it serves).
 */
export function copyPodOf(source: V1Pod, o: { name: string; node: string; service: string; image: string; container: string; pull?: boolean }): V1Pod {
  const annotations = { ...(source.metadata?.annotations ?? {}) };
  delete annotations['kubectl.kubernetes.io/last-applied-configuration'];
  delete annotations['controller.kubernetes.io/pod-deletion-cost'];
  const spec = structuredClone(source.spec!);
  // Bound directly: the scheduler's choice is the migration's, and the source's node constraints name the old node.
  spec.nodeName = o.node;
  delete spec.nodeSelector;
  delete spec.affinity;
  spec.containers = spec.containers.map((c) => (c.name === o.container ? { ...c, image: o.image, imagePullPolicy: o.pull ? 'IfNotPresent' : 'Never' } : c));
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: o.name,
      namespace: source.metadata!.namespace,
      // Its opt-in to migrating on eviction goes with it; no controller selects on that label.
      labels: { [LABEL_COPY_FOR]: o.service, ...(source.metadata?.labels?.[LABEL_ON_EVICTION] ? { [LABEL_ON_EVICTION]: source.metadata.labels[LABEL_ON_EVICTION] } : {}) },
      annotations: { ...annotations, [ANNOTATION_SOURCE]: source.metadata!.name! },
    },
    spec,
  };
}
