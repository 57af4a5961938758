/**
 * The mechanisms of issue 13 on the real stack (Temporal, RabbitMQ, CRIU, the local runtime's agents as
 * processes), each judged by the ledger's order oracle from the producers' and the output logs: nothing
 * lost, nothing applied twice, no output twice, every instance's apply sequence equal message by message.
 * - `stream`: the source's pages go to the target's CRIU page server during the dump (TLS);
 * - `lazy`: the copy runs before its memory has arrived and fetches it from the source's node;
 * - both together, and stop-and-copy with lazy;
 * - a page stream or a lazy-page client from outside the cluster is refused in the TLS handshake;
 * - a node that cannot do a mechanism makes validate refuse it, changing nothing.
 * The mechanisms' faults (a corrupted page stream, the source or an agent killed in the lazy phase) are
 * in chaos/faults.ts and run with the others in faults.test.ts.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterHandle } from '../../runtimes/types';
import { startE2eCluster, stopE2eCluster, type E2eCluster } from './e2e-cluster';
import { runScenario, undeploy } from '../../cli/scenario';
import { WorkflowFailedError } from '@temporalio/client';
import type { ApplicationFailure } from '@temporalio/common';
import { loadConfig } from '../../lib/config';
import type { Mechanisms, MigrationReport, Strategy } from '../../lib/migration';
import { expectExact } from './exact';
import { nodeTls } from '../../runtimes/local/pki';
import { PageStreamReceiver } from '../../runtimes/local/page-stream-receiver';
import { serveLazyPages } from '../../runtimes/local/lazy-page-server';

const MIGRATION_TIMEOUT = 180_000;
const run = Date.now().toString(36);
let e2e: E2eCluster;
let cluster: ClusterHandle;

beforeAll(async () => {
  e2e = await startE2eCluster('mechanisms', ['node-a', 'node-b', 'node-c'], {
    taskQueue: `ms2m-mechanisms-${run}`,
    // node-c's CRIU says its kernel's userfaultfd is unusable, as on a kernel without it.
    nodeEnv: (dir) => {
      const noUffd = path.join(dir, 'criu-without-uffd');
      writeFileSync(noUffd, `#!/bin/sh\nif [ "$1" = check ] && [ "$3" = uffd-noncoop ]; then echo "UFFD is not supported (injected)"; exit 1; fi\nexec "${loadConfig().criu}" "$@"\n`);
      chmodSync(noUffd, 0o755);
      return { 'node-c': { MS2M_CRIU: noUffd } };
    },
  });
  ({ cluster } = e2e);
});

afterAll(async () => {
  await stopE2eCluster(e2e);
});

async function migrate(name: string, mechanisms: Mechanisms, o: { strategy?: Strategy; stateMb?: number; to?: string } = {}): Promise<MigrationReport> {
  const { report } = await runScenario(cluster, {
    service: `${name}-${run}`,
    workload: 'ledger',
    from: 'node-a',
    to: o.to ?? 'node-b',
    strategy: o.strategy ?? 'shadow',
    rate: 60,
    stateBytes: (o.stateMb ?? 32) * 1024 * 1024,
    warmupMs: 1500,
    settleMs: 1500,
    mechanisms,
  });
  return report;
}

describe('how the image moves: every mechanism hands over exactly', () => {
  it(
    'stream: the pages go to the target during the dump, the rest of the image after it',
    async () => {
      const r = await migrate('stream', { transfer: 'stream', lazy: false });
      expect(r.outcome).toBe('completed');
      expect(r.mechanisms).toEqual({ transfer: 'stream', lazy: false });
      // The 32 MB of state went through the page stream, not the transfer.
      expect(r.streamedBytes).toBeGreaterThan(32 * 1024 * 1024);
      expect(r.checkpointBytes).toBeGreaterThanOrEqual(r.streamedBytes!);
      expect(r.accounting.handoff).toBe('exact');
      expectExact(r.verification!, 1);
    },
    MIGRATION_TIMEOUT,
  );

  it(
    'lazy: the copy replays while its memory arrives from the source node, and is fenced only once all of it is in',
    async () => {
      const r = await migrate('lazy', { transfer: 'files', lazy: true });
      expect(r.outcome).toBe('completed');
      expect(r.lazy!.bytesLeft).toBeGreaterThan(32 * 1024 * 1024);
      // Every page left behind was fetched: the daemon moved them all (4 KiB pages).
      expect(r.lazy!.pages * 4096).toBe(r.lazy!.bytesLeft);
      expect(r.lazy!.ms).toBeGreaterThan(0);
      expect(r.accounting.handoff).toBe('exact');
      expectExact(r.verification!, 1);
    },
    MIGRATION_TIMEOUT,
  );

  it(
    'stream and lazy together: the restore fills the memory from the image that streamed in',
    async () => {
      const r = await migrate('stream-lazy', { transfer: 'stream', lazy: true });
      expect(r.outcome).toBe('completed');
      expect(r.streamedBytes).toBeGreaterThan(32 * 1024 * 1024);
      expect(r.lazy).toMatchObject({ bytesLeft: 0 });
      expect(r.lazy!.pages).toBeGreaterThan(8192);
      expectExact(r.verification!, 1);
    },
    MIGRATION_TIMEOUT,
  );

  it(
    'stop-and-copy with lazy: the copy waits for its pages before it takes over',
    async () => {
      const r = await migrate('cold-lazy', { transfer: 'files', lazy: true }, { strategy: 'stop-and-copy' });
      expect(r.outcome).toBe('completed');
      expect(r.lazy!.pages * 4096).toBe(r.lazy!.bytesLeft);
      expectExact(r.verification!);
    },
    MIGRATION_TIMEOUT,
  );

  it(
    'a node that cannot do a mechanism: validate refuses it by field and node, and nothing changes',
    async () => {
      const service = `refused-${run}`;
      const err = await runScenario(cluster, { service, workload: 'ledger', from: 'node-a', to: 'node-c', strategy: 'shadow', rate: 30, warmupMs: 500, settleMs: 500, keep: true, mechanisms: { lazy: true } }).then(
        () => null,
        (e: unknown) => e as WorkflowFailedError,
      );
      const cause = err?.cause as ApplicationFailure | undefined;
      expect(cause?.type).toBe('InvalidInput');
      expect(cause?.message).toMatch(/^mechanisms\.lazy: true is not possible on node "node-c": .*uffd-noncoop.*UFFD is not supported \(injected\)/);
      const report = cause!.details![0] as MigrationReport;
      expect(report.phases.map((p) => p.phase)).toEqual(['validate']);
      // Nothing moved: the service is where it was, and served there by the instance it had.
      expect((await cluster.placement(service))?.node).toBe('node-a');
      expect((await cluster.liveInstances(service)).map((i) => i.node)).toEqual(['node-a']);
      await undeploy(cluster, service);
    },
    MIGRATION_TIMEOUT,
  );
});

describe('the page channels refuse whoever is not of the cluster', () => {
  /** A TLS client with the key and certificate of `tls`; what it heard back, or how it was refused. */
  function client(port: number, tls: ReturnType<typeof nodeTls>): Promise<string> {
    return new Promise((resolve) => {
      const sock = tlsConnect({ host: '127.0.0.1', port, key: tls.key, cert: tls.cert, ca: tls.ca, rejectUnauthorized: false }, () => sock.write(Buffer.alloc(32)));
      sock.on('data', () => resolve('answered'));
      sock.on('error', (err) => resolve(`error: ${err.message}`));
      sock.on('close', () => resolve('closed'));
    });
  }
  const foreign = () => nodeTls(mkdtempSync(path.join(os.tmpdir(), 'ms2m-foreign-')), 'intruder', '127.0.0.1');

  it("a foreign page stream is refused in the target's CRIU page server's handshake, where one of the cluster gets past it", async () => {
    const home = cluster.opts.home;
    const open = () =>
      PageStreamReceiver.open('foreign', mkdtempSync(path.join(os.tmpdir(), 'ms2m-stream-')), { node: 'node-b', host: '127.0.0.1', criu: loadConfig().criu, tls: nodeTls(home, 'node-b', '127.0.0.1'), log: () => undefined });
    const port = (r: PageStreamReceiver) => Number(r.address.split(':')[1]);
    const intruded = await open();
    const member = await open();
    try {
      await client(port(intruded), foreign());
      await client(port(member), nodeTls(home, 'node-a', '127.0.0.1'));
      const refusal = await intruded.settled();
      const other = await member.settled();
      // Both sessions fail (32 zero bytes are no dump), but only the foreign one at its certificate.
      expect(refusal).toMatch(/certificate|verify|TLS|tls/);
      expect(other).not.toMatch(/certificate|verify/);
    } finally {
      intruded.close();
      member.close();
    }
  });

  it("a foreign lazy-pages client never gets a connection to the source's page server, where one of the cluster does", async () => {
    const home = cluster.opts.home;
    const refusals: string[] = [];
    const s = await serveLazyPages(mkdtempSync(path.join(os.tmpdir(), 'ms2m-lazy-')), { node: 'node-a', host: '127.0.0.1', tls: nodeTls(home, 'node-a', '127.0.0.1'), log: (l) => refusals.push(l) });
    try {
      await client(s.port, foreign());
      expect(s.stats.connections).toBe(0);
      expect(refusals.join('\n')).toMatch(/refused a connection/);
      await client(s.port, nodeTls(home, 'node-b', '127.0.0.1'));
      expect(s.stats.connections).toBe(1);
      expect(s.stats.requests).toBe(0);
    } finally {
      s.close();
    }
  });
});
