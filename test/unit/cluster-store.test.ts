import { mkdtempSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClusterStore } from '../../runtimes/local/cluster-store';

describe('cluster store', () => {
  it('keeps a drained node drained when its agent registers again', () => {
    const store = new ClusterStore(mkdtempSync(path.join(os.tmpdir(), 'ms2m-store-')));
    store.registerNode({ node: 'node-a', taskQueue: 'q', imageUrl: 'http://x', dataDir: '/d', pid: 1, updatedAt: 0 });
    expect(store.setSchedulable('node-a', false)).toBe(true);
    store.registerNode({ node: 'node-a', taskQueue: 'q', imageUrl: 'http://y', dataDir: '/d', pid: 2, updatedAt: 1 });
    expect(store.node('node-a')).toMatchObject({ schedulable: false, imageUrl: 'http://y' });
    expect(store.setSchedulable('node-z', false)).toBe(false);
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
