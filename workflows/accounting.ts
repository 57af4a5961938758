/**
 * The report's accounting, from the instances' own counters at the start and the end of their parts (no
 * producers' log needed). Pure workflow code.
 */
import type { HandoffAccounting } from '../lib/migration';
import type { InstanceStatus } from '../service/protocol';

/** What the migration saw of its two instances. */
export interface Counters {
  sourceInstance: string;
  copyId: string;
  sourceAtStart: InstanceStatus | null;
  sourceAtEnd: InstanceStatus | null;
  copyAtRestore: InstanceStatus | null;
  copyAtSwap: InstanceStatus | null;
}

/** Fills in `a` for the instance found `serving` (its status `final`, with the broker's `consumers` count of the primary queue). */
export function accountingOf(a: HandoffAccounting, c: Counters, serving: string, final: InstanceStatus | null, consumers: number): HandoffAccounting {
  const { sourceInstance, copyId, sourceAtStart, sourceAtEnd, copyAtRestore, copyAtSwap } = c;
  const srcEnd = serving === sourceInstance ? (final ?? sourceAtEnd) : sourceAtEnd;
  if (sourceAtStart && srcEnd) {
    a.source = {
      instance: sourceInstance,
      applied: srcEnd.applied - sourceAtStart.applied,
      skippedDuplicates: srcEnd.skippedDuplicates - sourceAtStart.skippedDuplicates,
      gaps: srcEnd.gaps - sourceAtStart.gaps,
      logged: srcEnd.logged - sourceAtStart.logged,
      outputsEmitted: srcEnd.outputsEmitted - sourceAtStart.outputsEmitted,
      position: srcEnd.applied,
    };
  }
  if (copyAtRestore) {
    const swap = copyAtSwap;
    const after = serving === copyId && final && swap ? final : null;
    a.copy = {
      instance: copyId,
      restoredAt: copyAtRestore.applied,
      replayed: swap ? swap.applied - copyAtRestore.applied : 0,
      replaySkipped: swap?.replaySkipped ?? 0,
      replayGaps: swap?.replayGaps ?? 0,
      outputsSuppressed: swap?.outputsSuppressed ?? 0,
      position: (after ?? swap)?.applied ?? copyAtRestore.applied,
      afterSwap: after
        ? {
            applied: after.applied - swap!.applied,
            skippedDuplicates: after.skippedDuplicates - swap!.skippedDuplicates,
            gaps: after.gaps - swap!.gaps,
            outputsEmitted: after.outputsEmitted,
          }
        : null,
    };
  }
  a.serving = final ? { instance: serving, position: final.applied, consumers } : null;
  return a;
}
