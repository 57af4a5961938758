/**
 * Fault injection against the real stack: for every fault in chaos/faults.ts, one migration of the
 * order-sensitive ledger service under load with the fault applied inside its phase. Each must end
 * migrated or rolled back as the fault allows, with nothing lost, nothing applied twice, no output
 * emitted twice, every instance's apply sequence equal message by message, and exactly one instance
 * serving with the state rebuilt from the producers' log (chaos/verdict.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAULTS } from '../../chaos/faults';
import { runRound } from '../../chaos/round';
import type { ClusterHandle } from '../../runtimes/types';
import { startE2eCluster, stopE2eCluster, type E2eCluster } from './e2e-cluster';

const run = Date.now().toString(36);
let e2e: E2eCluster;
let cluster: ClusterHandle;

beforeAll(async () => {
  e2e = await startE2eCluster('faults', ['node-a', 'node-b'], { taskQueue: `ms2m-faults-${run}` });
  ({ cluster } = e2e);
});

afterAll(async () => {
  await stopE2eCluster(e2e);
});

describe('every fault ends migrated or rolled back, with nothing lost', () => {
  FAULTS.forEach((fault, i) => {
    it(
      `${fault.name}: ${fault.description}`,
      async () => {
        const r = await runRound(cluster, fault, `f${i}-${run}`, { workload: 'ledger' });
        const rep = r.result.report;
        console.log(
          `${fault.name}: ${rep.outcome}${rep.failure ? ` (${rep.failure.phase}: ${rep.failure.type})` : ''}, handoff ${rep.accounting.handoff}, ` +
            `total ${rep.totalMs} ms, downtime ${rep.downtimeMs} ms, ${rep.verification!.published} published, ${rep.verification!.order?.compared ?? 0} positions compared`,
        );
        expect(r.violations, `${fault.name}: ${JSON.stringify(r.result.report.failure ?? null)}\n${r.log.join('\n')}`).toEqual([]);
        expect(r.result.report.verification!.published).toBeGreaterThan(40);
        expect(r.result.report.verification!.order?.ok).toBe(true);
        if (fault.name === 'source-crashed@replay') expect(r.result.report.sourceLost).toBeTruthy();
        if (fault.name === 'source-stalled@prepare') expect(r.result.report.failure).toMatchObject({ phase: 'prepare', type: 'PrepareTimeout' });
      },
      180_000,
    );
  });
});
