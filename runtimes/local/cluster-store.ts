/**
 * The local runtime's cluster state: which nodes exist (with their task queues) and where each service
 * runs. On Kubernetes the API server plays this part; here it is a directory of JSON files written
 * atomically (write to a temporary file, then rename). The migration lock is not here: it is Temporal's
 * (activities/lock.ts).
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { NodeInfo } from '../types';

/** Service instances a node takes unless its agent is told otherwise (--capacity). */
export const DEFAULT_CAPACITY = 10;

export interface NodeRecord {
  node: string;
  taskQueue: string;
  imageUrl: string;
  dataDir: string;
  pid: number;
  updatedAt: number;
  /** How many service instances the node takes (placement policy). */
  capacity?: number;
  /** false: no service is placed or migrated onto it (a drained node); absent means schedulable. */
  schedulable?: boolean;
}

/** A node as the port describes it. */
export const nodeInfo = (n: NodeRecord): NodeInfo => ({ node: n.node, taskQueue: n.taskQueue, capacity: n.capacity ?? DEFAULT_CAPACITY, schedulable: n.schedulable !== false });

export class ClusterStore {
  constructor(readonly home: string) {}

  private dir(kind: string): string {
    const d = path.join(this.home, 'cluster', kind);
    mkdirSync(d, { recursive: true });
    return d;
  }

  private read<T>(kind: string, name: string): T | null {
    try {
      return JSON.parse(readFileSync(path.join(this.dir(kind), `${name}.json`), 'utf8')) as T;
    } catch {
      return null;
    }
  }

  private write(kind: string, name: string, value: unknown): void {
    const file = path.join(this.dir(kind), `${name}.json`);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(value, null, 2));
    renameSync(tmp, file);
  }

  private list<T>(kind: string): T[] {
    return readdirSync(this.dir(kind))
      .filter((f) => f.endsWith('.json'))
      .map((f) => this.read<T>(kind, f.slice(0, -5)))
      .filter((v): v is NonNullable<typeof v> => v !== null) as T[];
  }

  /** An agent (re)registering keeps the node's schedulability: a drained node stays drained across restarts. */
  registerNode(rec: NodeRecord): void {
    const old = this.node(rec.node);
    this.write('nodes', rec.node, { ...rec, schedulable: rec.schedulable ?? old?.schedulable ?? true });
  }
  setSchedulable(node: string, schedulable: boolean): boolean {
    const rec = this.node(node);
    if (!rec) return false;
    this.write('nodes', node, { ...rec, schedulable });
    return true;
  }
  node(name: string): NodeRecord | null {
    return this.read('nodes', name);
  }
  nodes(): NodeRecord[] {
    return this.list('nodes');
  }

  placement<T>(service: string): T | null {
    return this.read('placements', service);
  }
  setPlacement(service: string, value: unknown): void {
    this.write('placements', service, value);
  }
  placements<T>(): T[] {
    return this.list<T>('placements');
  }
  removePlacement(service: string): void {
    rmSync(path.join(this.dir('placements'), `${service}.json`), { force: true });
  }
}
