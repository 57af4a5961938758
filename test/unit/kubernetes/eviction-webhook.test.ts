/**
 * The eviction webhook's decisions (runtimes/kubernetes/eviction-webhook.ts) with a fake API server and
 * Temporal: which evictions pass, which start a move, and what a retry is told while the move runs, after
 * it completed, and after it failed.
 */
import { describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { RETRY_MS, decideEviction, type AdmissionRequest, type EvictionDeps, type MoveState } from '../../../runtimes/kubernetes/eviction-webhook';
import { strategyFor } from '../../../lib/rebalance';

const pod = (labels: Record<string, string>): V1Pod => ({ metadata: { name: 'orders-7d9f', namespace: 'shop', uid: 'abcdef12-3456', labels }, spec: { nodeName: 'node-a', containers: [] } });
const OPTED = { app: 'orders', 'ms2m.io/service': 'orders', 'ms2m.io/on-eviction': 'migrate' };
const eviction = (o: Partial<AdmissionRequest> = {}): AdmissionRequest => ({ uid: 'u1', resource: { group: '', version: 'v1', resource: 'pods' }, subResource: 'eviction', name: 'orders-7d9f', namespace: 'shop', operation: 'CREATE', ...o });

function deps(p: V1Pod | null, move: MoveState | null, now = 1_000_000, schedulable = false) {
  const started: Array<{ id: string; service: string; node: string }> = [];
  const d: EvictionDeps = {
    namespaces: ['shop'],
    pod: async () => p,
    schedulable: async () => schedulable,
    move: async () => move,
    startMove: async (id, input) => void started.push({ id, ...input }),
    now: () => now,
  };
  return { d, started };
}

describe('the eviction webhook', () => {
  it('lets every eviction pass that is not of an opted-in pod ms2m serves a service with', async () => {
    for (const [p, req] of [
      [pod({ app: 'orders', 'ms2m.io/service': 'orders' }), eviction()],
      [pod({ app: 'orders', 'ms2m.io/on-eviction': 'migrate' }), eviction()],
      [pod({ ...OPTED, 'ms2m.io/on-eviction': 'keep' }), eviction()],
      [null, eviction()],
      [pod(OPTED), eviction({ namespace: 'elsewhere' })],
      [pod(OPTED), eviction({ subResource: undefined })],
    ] as const) {
      const { d, started } = deps(p, null);
      expect(await decideEviction(req, d)).toEqual({ allowed: true });
      expect(started).toEqual([]);
    }
  });

  it('starts the move of an opted-in pod\'s service off its node and refuses with 429, which kubectl drain retries', async () => {
    const { d, started } = deps(pod(OPTED), null);
    const v = await decideEviction(eviction(), d);
    expect(v.allowed).toBe(false);
    expect(v.status).toMatchObject({ code: 429, reason: 'TooManyRequests' });
    expect(v.status!.message).toMatch(/^ms2m is moving orders off node-a instead of evicting orders-7d9f \(workflow ms2m-evict-orders-abcdef12\)/);
    expect(started).toEqual([{ id: 'ms2m-evict-orders-abcdef12', service: 'orders', node: 'node-a' }]);
  });

  it('a dry run is told the same and starts nothing', async () => {
    const { d, started } = deps(pod(OPTED), null);
    expect((await decideEviction(eviction({ dryRun: true }), d)).status?.code).toBe(429);
    expect(started).toEqual([]);
  });

  it('refuses while the move runs and once it completed (the pod is ending), starting nothing more', async () => {
    const running = deps(pod(OPTED), { running: true });
    expect((await decideEviction(eviction(), running.d)).status?.message).toMatch(/is moving orders off node-a/);
    const done = deps(pod(OPTED), { running: false, endedAt: 999_000, failure: null, outcome: { service: 'orders', from: 'node-a', to: 'node-b', workflowId: 'w', outcome: 'completed' } });
    expect((await decideEviction(eviction(), done.d)).status?.message).toBe('ms2m moved orders to node-b; orders-7d9f is ending, retry');
    expect([...running.started, ...done.started]).toEqual([]);
  });

  it('after a failed move the pod keeps serving: refused with the reason, and moved again only after RETRY_MS', async () => {
    const failed: MoveState = { running: false, endedAt: 1_000_000 - 1000, failure: null, outcome: { service: 'orders', from: 'node-a', to: 'node-b', workflowId: 'w', outcome: 'rolled-back', error: 'restore failed' } };
    const soon = deps(pod(OPTED), failed);
    const v = await decideEviction(eviction(), soon.d);
    expect(v.status?.code).toBe(429);
    expect(v.status?.message).toMatch(/could not move orders off node-a \(workflow ms2m-evict-orders-abcdef12: restore failed\); orders-7d9f keeps serving there with its state/);
    expect(soon.started).toEqual([]);
    const later = deps(pod(OPTED), failed, 1_000_000 + RETRY_MS);
    expect((await decideEviction(eviction(), later.d)).status?.message).toMatch(/^ms2m is moving orders off node-a again instead of evicting/);
    expect(later.started).toHaveLength(1);
  });

  it('answers NotFound when the name now belongs to the pod ms2m restored on a node nobody drains (kubectl evicts by name)', async () => {
    const moved = { ...pod(OPTED), metadata: { ...pod(OPTED).metadata, annotations: { 'ms2m.io/copy-of': 'orders-shadow' } }, spec: { nodeName: 'node-b', containers: [] } };
    const retry = deps(moved, null, 1_000_000, true);
    const v = await decideEviction(eviction(), retry.d);
    expect(v).toMatchObject({ allowed: false, status: { code: 404, reason: 'NotFound' } });
    expect(retry.started).toEqual([]);
    // Before it serves, while the migration brings it up, it is a copy: its eviction waits.
    const copy = { ...moved, metadata: { ...moved.metadata, labels: { app: 'orders', 'ms2m.io/copy-for': 'orders', 'ms2m.io/on-eviction': 'migrate' } } };
    expect((await decideEviction(eviction(), deps(copy, null, 1_000_000, true).d)).status).toMatchObject({ code: 429, message: 'orders-7d9f is the copy ms2m is bringing up for orders; retry once it serves' });
    // Drained itself later (its node cordoned), it moves like any opted-in pod.
    const drained = deps(moved, null, 1_000_000, false);
    expect((await decideEviction(eviction(), drained.d)).status?.code).toBe(429);
    expect(drained.started).toHaveLength(1);
  });
});

describe('strategyFor', () => {
  it('moves a StatefulSet\'s pod by the name-keeping counterpart of the strategy asked for, anything else by the plain one', () => {
    expect(['shadow', 'stop-and-copy', 'shadow-swap', 'sequential'].map((s) => strategyFor(s as never, true))).toEqual(['shadow-swap', 'sequential', 'shadow-swap', 'sequential']);
    expect(['shadow', 'stop-and-copy', 'shadow-swap', 'sequential'].map((s) => strategyFor(s as never, false))).toEqual(['shadow', 'stop-and-copy', 'shadow', 'stop-and-copy']);
  });
});
