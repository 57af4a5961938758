/**
 * The local runtime's cluster state: which nodes exist, where each service runs, and which workflow holds
 * a service's migration lock. On Kubernetes the API server plays this part; here it is a directory of JSON
 * files written atomically (write to a temporary file, then rename).
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
import * as path from 'node:path';

export interface NodeRecord {
  node: string;
  taskQueue: string;
  imageUrl: string;
  dataDir: string;
  pid: number;
  updatedAt: number;
}

export interface LockRecord {
  service: string;
  workflowId: string;
  runId: string;
  takenAt: number;
}

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

  registerNode(rec: NodeRecord): void {
    this.write('nodes', rec.node, rec);
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
  removePlacement(service: string): void {
    rmSync(path.join(this.dir('placements'), `${service}.json`), { force: true });
  }

  /** Creates the lock file only if absent (O_EXCL), so two workflows cannot both take it. */
  tryLock(rec: LockRecord): LockRecord | null {
    const file = path.join(this.dir('locks'), `${rec.service}.json`);
    try {
      const fd = openSync(file, 'wx');
      writeFileSync(fd, JSON.stringify(rec));
      closeSync(fd);
      return null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return this.read<LockRecord>('locks', rec.service);
    }
  }
  lockHolder(service: string): LockRecord | null {
    return this.read<LockRecord>('locks', service);
  }
  unlock(service: string): void {
    rmSync(path.join(this.dir('locks'), `${service}.json`), { force: true });
  }
}
