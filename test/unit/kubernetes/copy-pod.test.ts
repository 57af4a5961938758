/**
 * The copy's pod is the source's with the checkpoint image: the same volumes and mount paths (a restored
 * container needs exactly the mounts it had), bound to the target node, and none of the labels a
 * controller selects on, so no ReplicaSet counts it before the migration commits it.
 */
import type { V1Pod } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { describe, expect, it } from 'vitest';
import { copyPodOf } from '../../../runtimes/kubernetes/copy-pod';

const source: V1Pod = {
  metadata: {
    name: 'ledger-5c9d-x1',
    namespace: 'default',
    uid: 'u-1',
    resourceVersion: '42',
    labels: { app: 'ledger', 'pod-template-hash': '5c9d', 'ms2m.io/service': 'ledger' },
    annotations: { 'org.criu.config': '/etc/criu/runc.conf', 'controller.kubernetes.io/pod-deletion-cost': '-5', 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
    ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'ledger-5c9d', uid: 'rs', controller: true }],
  },
  spec: {
    nodeName: 'node-a',
    nodeSelector: { 'kubernetes.io/hostname': 'node-a' },
    containers: [
      { name: 'app', image: 'localhost/ms2m:1', volumeMounts: [{ name: 'identity', mountPath: '/etc/ms2m/pod' }] },
      { name: 'sidecar', image: 'localhost/other:1' },
    ],
    volumes: [{ name: 'identity', downwardAPI: { items: [{ path: 'name', fieldRef: { fieldPath: 'metadata.name' } }] } }],
  },
  status: { phase: 'Running' },
};

describe('the copy pod', () => {
  const copy = copyPodOf(source, { name: 'ledger-1a2b3c4d', node: 'node-b', service: 'ledger', image: 'localhost/ms2m-checkpoint:m1', container: 'app' });

  it('runs the checkpoint image in the restored container only, on the target node, never pulled', () => {
    expect(copy.spec!.nodeName).toBe('node-b');
    expect(copy.spec!.nodeSelector).toBeUndefined();
    expect(copy.spec!.containers.map((c) => [c.name, c.image, c.imagePullPolicy])).toEqual([
      ['app', 'localhost/ms2m-checkpoint:m1', 'Never'],
      ['sidecar', 'localhost/other:1', undefined],
    ]);
  });

  it('mounts exactly the source\'s volumes at the source\'s paths', () => {
    expect(copy.spec!.volumes).toEqual(source.spec!.volumes);
    expect(copy.spec!.containers[0].volumeMounts).toEqual(source.spec!.containers[0].volumeMounts);
  });

  it('carries none of the source\'s labels, owners or identity, and keeps its CRIU annotation', () => {
    expect(copy.metadata).toMatchObject({ name: 'ledger-1a2b3c4d', namespace: 'default', labels: { 'ms2m.io/copy-for': 'ledger' } });
    expect(Object.keys(copy.metadata!.labels!)).toEqual(['ms2m.io/copy-for']);
    expect(copy.metadata!.ownerReferences).toBeUndefined();
    expect(copy.metadata!.uid).toBeUndefined();
    expect(copy.metadata!.annotations).toEqual({ 'org.criu.config': '/etc/criu/runc.conf', 'ms2m.io/copy-of': 'ledger-5c9d-x1' });
    expect(copy.status).toBeUndefined();
  });

  it('leaves the source pod as it was', () => {
    expect(source.spec!.nodeName).toBe('node-a');
    expect(source.spec!.containers[0].image).toBe('localhost/ms2m:1');
  });
});
