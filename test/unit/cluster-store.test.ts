import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClusterStore } from '../../runtime/cluster-store';

describe('cluster store', () => {
  it('gives a service lock to one workflow at a time', () => {
    const store = new ClusterStore(mkdtempSync(path.join(os.tmpdir(), 'ms2m-store-')));
    expect(store.tryLock({ service: 'game', workflowId: 'w1', runId: 'r1', takenAt: 1 })).toBeNull();
    expect(store.tryLock({ service: 'game', workflowId: 'w2', runId: 'r2', takenAt: 2 })).toMatchObject({ workflowId: 'w1' });
    expect(store.tryLock({ service: 'other', workflowId: 'w2', runId: 'r2', takenAt: 2 })).toBeNull();
    store.unlock('game');
    expect(store.tryLock({ service: 'game', workflowId: 'w2', runId: 'r2', takenAt: 3 })).toBeNull();
  });
  it('keeps placements and nodes', () => {
    const store = new ClusterStore(mkdtempSync(path.join(os.tmpdir(), 'ms2m-store-')));
    store.setPlacement('game', { service: 'game', node: 'node-a' });
    expect(store.placement('game')).toEqual({ service: 'game', node: 'node-a' });
    store.removePlacement('game');
    expect(store.placement('game')).toBeNull();
    store.registerNode({ node: 'node-a', taskQueue: 'q', imageUrl: 'http://x', dataDir: '/d', pid: 1, updatedAt: 0 });
    expect(store.nodes().map((n) => n.node)).toEqual(['node-a']);
  });
});
