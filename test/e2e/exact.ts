/** The handoff was exact, by the ledger's order oracle and the producers' and output logs. */
import { expect } from 'vitest';
import type { Verification } from '../../lib/migration';

export function expectExact(v: Verification, minCompared = 0): void {
  expect(v.order?.problems).toEqual([]);
  expect(v.order).toMatchObject({ ok: true, divergences: 0, lost: 0, duplicated: 0, outOfOrder: 0, outputMismatches: 0, finalStateMatches: true });
  expect(v.order!.compared).toBeGreaterThanOrEqual(minCompared);
  expect(v).toMatchObject({ lost: 0, duplicated: 0, duplicateOutputs: 0, finalStateMatchesProducers: true });
  expect(v.processed).toBe(v.published);
}
