/**
 * The instances a node agent runs, one JSON file each in the node's data directory, so an agent that
 * restarts finds the services it started or restored (they run detached and outlive it).
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { InstanceExit, InstanceRecord } from '../types';
import { isAlive } from './proc';

export interface StoredInstance extends Omit<InstanceRecord, 'details'> {
  pid: number;
  /** Where its stdout and stderr go. */
  logPath: string;
  /** /proc start time, to tell our process from a later one that reuses the PID. */
  procStartTime: number;
  stoppedAt?: number;
  /** How the process ended, written by the agent that started it (its parent) when it saw the exit. */
  exit?: InstanceExit;
}

export class InstanceRegistry {
  private readonly dir: string;

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, 'instances');
    mkdirSync(this.dir, { recursive: true });
  }

  get(instanceId: string): StoredInstance | null {
    try {
      return JSON.parse(readFileSync(path.join(this.dir, `${instanceId}.json`), 'utf8')) as StoredInstance;
    } catch {
      return null;
    }
  }

  put(rec: StoredInstance): void {
    const file = path.join(this.dir, `${rec.instanceId}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify(rec, null, 2));
    renameSync(`${file}.tmp`, file);
  }

  all(): StoredInstance[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => this.get(f.slice(0, -5)))
      .filter((r): r is StoredInstance => r !== null);
  }

  /** Applies `change` to the stored record, read right before: two writers of one record each keep the other's fields. */
  update(instanceId: string, change: Partial<StoredInstance>): void {
    const rec = this.get(instanceId);
    if (rec) this.put({ ...rec, ...change });
  }

  alive(rec: StoredInstance): boolean {
    return !rec.stoppedAt && isAlive(rec.pid, rec.procStartTime);
  }
}
