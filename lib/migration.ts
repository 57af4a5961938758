/**
 * Inputs, progress and reports of migrations. Imported by the workflow sandbox, so it must stay free of
 * Node APIs and I/O.
 */
import { z } from 'zod';
import { countField, describeInputError, msField, nameField, objectMessages } from './input-fields';
import { ServiceSpecSchema, type ServiceSpecInput } from '../runtimes/spec';

export { describeInputError };
export { ServiceSpecSchema, type ServiceSpec, type ServiceSpecInput } from '../runtimes/spec';
export { lagTrend, type LagSample, type LagTrend } from './replay-stop';
import type { LagTrend } from './replay-stop';

/**
 * `shadow` and `stop-and-copy` move any instance to a copy of a new name. A StatefulSet knows its pod by
 * name, so its pod moves by one of the other two, which end with a pod of the same name on the target:
 * `sequential` stops it and restores that name there from its checkpoint (the seeds' baseline: the
 * downtime is the whole pipeline); `shadow-swap` hands the stream to a shadow copy first, then on the
 * target from the shadow to a pod of the StatefulSet's name, each handoff exact.
 */
export const STRATEGIES = ['stop-and-copy', 'shadow', 'sequential', 'shadow-swap'] as const;
export type Strategy = (typeof STRATEGIES)[number];
/** The strategies for an instance its controller knows by name (a StatefulSet's pod). */
export const NAME_KEEPING: readonly Strategy[] = ['sequential', 'shadow-swap'];
/** Whether the source keeps serving, shadowed, while its copy replays its apply log. */
export const shadows = (s: Strategy): boolean => s === 'shadow' || s === 'shadow-swap';

export const PHASES = ['validate', 'prepare', 'checkpoint', 'transfer', 'restore', 'replay', 'fence', 'finalize'] as const;
export type Phase = (typeof PHASES)[number];
export type Stage = Phase | 'rollback' | 'done' | 'rolled-back';

/** A bound on every wait of a migration; the defaults suit one host or a LAN. */
export const TimeoutsSchema = z
  .object(
    {
    /** A node whose agent takes no work for this long is dead (Temporal schedule-to-start timeout on its queue). */
    nodeScheduleToStartMs: msField('timeouts.nodeScheduleToStartMs', 1000, 600_000, 15_000),
    /** A long activity that stops heartbeating for this long is lost with its worker and is retried. */
    heartbeatMs: msField('timeouts.heartbeatMs', 1000, 600_000, 10_000),
    /** Bound on one attempt of a node activity (checkpoint, transfer, restore). */
    nodeActivityMs: msField('timeouts.nodeActivityMs', 1000, 3_600_000, 300_000),
    /** Bound on an instance's reply to one control command. */
    controlReplyMs: msField('timeouts.controlReplyMs', 200, 600_000, 5_000),
    /** A restored copy must answer as a standby within this. */
    copyReadyMs: msField('timeouts.copyReadyMs', 1000, 600_000, 30_000),
    /** Bound on the copy's catch-up at the fence (it is downtime); past it the swap is refused and the source resumes. */
    catchUpMs: msField('timeouts.catchUpMs', 1000, 3_600_000, 120_000),
    /** While the broker or an instance is unreachable but alive (a broker restart), replay and fence keep trying this long. */
    unreachableMs: msField('timeouts.unreachableMs', 1000, 3_600_000, 60_000),
    },
    objectMessages('timeouts', '{"controlReplyMs": 5000}'),
  )
  .strict()
  .default({});
export type Timeouts = z.output<typeof TimeoutsSchema>;

/**
 * How the image moves (runtimes/types.ts, MECHANISMS): `transfer` "files" dumps the image to files on the
 * source and sends them (the baseline), "stream" sends the memory pages to the target while the source
 * dumps them; `lazy` restores the copy before its memory has arrived and fetches the rest while it
 * replays (post-copy). The fence waits until every page is in. Both nodes must support what is asked.
 */
export const TRANSFER_MODES = ['files', 'stream'] as const;
export type TransferMode = (typeof TRANSFER_MODES)[number];
export const MechanismsSchema = z
  .object(
    {
      transfer: z.enum(TRANSFER_MODES, { errorMap: () => ({ message: `mechanisms.transfer must be one of ${TRANSFER_MODES.join(', ')}` }) }).default('files'),
      lazy: z.boolean({ invalid_type_error: 'mechanisms.lazy must be true or false' }).default(false),
    },
    objectMessages('mechanisms', '{"transfer": "stream", "lazy": true}'),
  )
  .strict()
  .default({});
export type Mechanisms = z.output<typeof MechanismsSchema>;

/** The four combinations of the mechanisms, by name, as the benchmark, the chaos command and reports label them. */
export const MECHANISM_LABELS = ['files', 'stream', 'lazy', 'stream+lazy'] as const;
export type MechanismLabel = (typeof MECHANISM_LABELS)[number];
export const mechanismsOf = (label: MechanismLabel): Mechanisms => ({ transfer: label.startsWith('stream') ? 'stream' : 'files', lazy: label.endsWith('lazy') });
export const labelOf = (m: Mechanisms): MechanismLabel => (m.transfer === 'stream' ? (m.lazy ? 'stream+lazy' : 'stream') : m.lazy ? 'lazy' : 'files');

export const MigrateInputSchema = z
  .object({
    service: nameField('service', 'game'),
    targetNode: nameField('targetNode', 'node-b'),
    strategy: z
      .enum(STRATEGIES, { errorMap: () => ({ message: `strategy must be one of ${STRATEGIES.join(', ')}` }) })
      .default('shadow'),
    replay: z
      .object({
        /** Fence once the copy is at most this many messages behind the source. */
        threshold: countField('replay.threshold', 'messages', 0, 1_000_000, 10),
        /** Fence after this long in replay even if the threshold was not reached (the backlog then shows as downtime, never as loss). */
        cutoffMs: msField('replay.cutoffMs', 0, 3_600_000, 120_000),
        /**
         * How long the lag trend is watched before judging convergence: a copy whose lag is not falling (messages
         * arrive as fast as it applies them), or would reach the threshold only after the cutoff, is fenced
         * at once, since waiting only delays the same catch-up. 0 waits for the threshold or the cutoff.
         */
        stallMs: msField('replay.stallMs', 0, 3_600_000, 3_000),
      }, objectMessages('replay', '{"threshold": 10, "cutoffMs": 120000}'))
      .strict()
      .default({}),
    mechanisms: MechanismsSchema,
    timeouts: TimeoutsSchema,
  }, objectMessages('the input', '{"service": "game", "targetNode": "node-b"}'))
  .strict();

export type MigrateInput = z.input<typeof MigrateInputSchema>;
export type MigrateRequest = z.output<typeof MigrateInputSchema>;

export const DeployInputSchema = z
  .object(
    {
      service: nameField('service', 'game'),
      node: nameField('node', 'node-a'),
      spec: ServiceSpecSchema,
      /** The started instance must answer ms2m control commands within this, or the deploy is refused (NotReady). */
      readyMs: msField('readyMs', 1000, 600_000, 20_000),
    },
    objectMessages('the input', '{"service": "game", "node": "node-a", "spec": {…}}'),
  )
  .strict();
export type DeployInput = Omit<z.input<typeof DeployInputSchema>, 'spec'> & { spec: ServiceSpecInput };
export type DeployRequest = z.output<typeof DeployInputSchema>;

export const UndeployInputSchema = z.object({ service: nameField('service', 'game') }, objectMessages('the input', '{"service": "game"}')).strict();
export type UndeployInput = z.input<typeof UndeployInputSchema>;

export type Marks = Record<string, number>;

export interface PhaseTiming {
  phase: Phase;
  startedAt: number;
  ms: number;
}

export interface ReplayStats {
  /** Messages the copy applied from the replay queue before the fence. */
  replayed: number;
  finalLag: number;
  thresholdReached: boolean;
  cutoffFired: boolean;
  /** Replay was ended early because the copy was not converging (see replay.stallMs). */
  stalled: boolean;
  /** Why replay ended. */
  endedBy: 'threshold' | 'cutoff' | 'not-converging' | 'none';
  /** The lag trend when replay ended, messages per second (negative: the copy was catching up). */
  lagSlopePerSec: number | null;
  /** The copy's apply rate during replay, messages per second. */
  applyRatePerSec: number | null;
  /** Predicted catch-up at the fence (lag / apply rate): compare with downtimeMs. */
  estimatedCatchUpMs: number | null;
}

/** Measured from the producers' and the output logs by whoever generated the load, never by the workflow. */
export interface Verification {
  published: number;
  processed: number;
  lost: number;
  duplicated: number;
  /** Outputs not flagged as resends that arrived more than once: must be 0. */
  duplicateOutputs: number;
  /** Second copies of outputs flagged as resends (a broker connection lost before the confirm); consumers drop them by message id. */
  resentOutputs: number;
  /** The longest wait, during the migration, of a message that nobody served (observed from outputs). */
  observedDowntimeMs: number;
  maxE2eLatencyMs: number;
  p99E2eLatencyMs: number;
  baselineMaxE2eLatencyMs: number;
  baselineP99E2eLatencyMs: number;
  /** The final state equals the one rebuilt from the producers' log (for the ledger: every check of `order` held). */
  finalStateMatchesProducers: boolean;
  /** Order-sensitive services only: the apply sequences of every instance compared message by message. */
  order?: OrderVerification;
}

/** What the ledger's oracle found (examples/ledger/oracle.ts). */
export interface OrderVerification {
  ok: boolean;
  problems: string[];
  /** Positions of the serving instance's sequence. */
  positions: number;
  /** Positions applied by more than one instance, compared message by message (each extra instance counts once). */
  compared: number;
  /** Instances that applied, at some position, another message or reached another state than the sequence. */
  divergences: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  /** Applied messages missing from the producers' confirmed log (a publish given up on that reached the broker). */
  unlogged: number;
  outputsChecked: number;
  outputMismatches: number;
  finalStateMatches: boolean;
}

export interface MigrationReport {
  migrationId: string;
  workflowId: string;
  service: string;
  strategy: Strategy;
  sourceNode: string;
  targetNode: string;
  sourceInstance: string;
  targetInstance: string;
  outcome: 'completed' | 'rolled-back';
  failure?: { phase: Stage; type: string; message: string };
  /** When the source died before its copy could take over: where the last checkpoint of its state is kept. */
  stateKeptIn?: string[];
  /**
   * Set when the post-condition failed: not exactly one instance serves the primary queue at the end. The
   * workflow then fails with ServiceNotServing (an alert, not a rollback), this report in its details.
   */
  notServing?: string;
  /**
   * The source died after its checkpoint: the copy adopted its stream (replayed the sealed replay queue to
   * its end, then took over the primary queue, emitting the outputs the source never emitted).
   */
  sourceLost?: { detectedIn: Stage; at: number };
  /** A cancellation that arrived too late to roll back (during or after the swap) and was ignored. */
  cancelIgnored?: boolean;
  /**
   * shadow-swap: the first handoff, to the shadow copy; the rest of the report is the second one, from
   * the shadow to the pod of the StatefulSet's name (`downtimeMs` counts both fences).
   */
  swap?: { shadow: string; downtimeMs: number; sourceDigest: string; shadowDigest: string };
  startedAt: number;
  endedAt: number;
  totalMs: number;
  phases: PhaseTiming[];
  /** From the instances' own clocks: source stopped consuming the primary queue → copy consuming it. */
  downtimeMs: number;
  freezeMs: number;
  checkpointBytes: number;
  /** Time spent inside the tools, as the activities measured it (the phases add Temporal dispatch on top). */
  tools: { dumpMs: number; transferMs: number; restoreMs: number };
  /** How the image moved (the input's `mechanisms`). */
  mechanisms: Mechanisms;
  /** Of `checkpointBytes`, what went straight to the target during the dump (`stream`). */
  streamedBytes?: number;
  /**
   * `lazy`: the pages left on the source at the transfer, and the lazy phase from the restore to the
   * last page in (the copy replays meanwhile; the fence waits for its end).
   */
  lazy?: { bytesLeft: number; ms: number; pages: number };
  replay: ReplayStats;
  stateMatch: boolean;
  sourceDigest: string;
  targetDigest: string;
  marks: Marks;
  /** From the instances' own counters, in every report however the migration was started. */
  accounting: HandoffAccounting;
  /** The test oracle: only when whoever ran the migration also kept the producers' and the output logs. */
  verification?: Verification;
}

/**
 * What the instances themselves counted across the handoff. The source's figures run from the migration's
 * start to its fence (or, rolled back, to its end); the copy's from its restore. Positions are places in
 * the service's apply sequence (its applied count).
 */
export interface HandoffAccounting {
  /**
   * `exact`: the copy took over at exactly the fenced source's position, marks and digest, with no position
   * missing from the apply log. `adopted`: the source died and the copy took over after replaying its whole
   * apply log. `refused`: the copy was compared and did not match, so the source kept the stream.
   * `moved` (sequential): the fenced instance itself was restored under its own name, with the fenced
   * position, marks and digest. `none`: the migration ended before a handoff was attempted.
   */
  handoff: 'exact' | 'adopted' | 'refused' | 'moved' | 'none';
  source: {
    instance: string;
    /** Messages the source applied during the migration. */
    applied: number;
    /** Redeliveries and producer resends skipped by the marks. */
    skippedDuplicates: number;
    /** Jumps in a producer's sequence: a message that never arrived. */
    gaps: number;
    /** Apply-log entries the source wrote for its copy. */
    logged: number;
    outputsEmitted: number;
    position: number;
  };
  copy: {
    instance: string;
    /** The position the checkpoint held. */
    restoredAt: number;
    /** Log entries applied before the handoff. */
    replayed: number;
    /** Log entries the checkpoint already held. */
    replaySkipped: number;
    replayGaps: number;
    outputsSuppressed: number;
    position: number;
    /** Once serving, until the end of the migration. */
    afterSwap: { applied: number; skippedDuplicates: number; gaps: number; outputsEmitted: number } | null;
  } | null;
  /** The post-condition's evidence: the one instance serving at the end, and the broker's consumer count of the primary queue. */
  serving: { instance: string; position: number; consumers: number } | null;
}

export function emptyAccounting(): HandoffAccounting {
  return {
    handoff: 'none',
    source: { instance: '', applied: 0, skippedDuplicates: 0, gaps: 0, logged: 0, outputsEmitted: 0, position: 0 },
    copy: null,
    serving: null,
  };
}

/** A report before anything happened: every field present, so a query at any moment answers. */
export function initialReport(input: Pick<MigrateRequest, 'service' | 'strategy' | 'targetNode'> & Partial<Pick<MigrateRequest, 'mechanisms'>>, workflowId: string, migrationId: string, startedAt: number): MigrationReport {
  return {
    migrationId,
    workflowId,
    service: input.service,
    strategy: input.strategy,
    sourceNode: '',
    targetNode: input.targetNode,
    sourceInstance: '',
    targetInstance: '',
    outcome: 'completed',
    startedAt,
    endedAt: startedAt,
    totalMs: 0,
    phases: [],
    downtimeMs: 0,
    freezeMs: 0,
    checkpointBytes: 0,
    tools: { dumpMs: 0, transferMs: 0, restoreMs: 0 },
    mechanisms: input.mechanisms ?? { transfer: 'files', lazy: false },
    replay: {
      replayed: 0,
      finalLag: 0,
      thresholdReached: false,
      cutoffFired: false,
      stalled: false,
      endedBy: 'none',
      lagSlopePerSec: null,
      applyRatePerSec: null,
      estimatedCatchUpMs: null,
    },
    stateMatch: false,
    sourceDigest: '',
    targetDigest: '',
    marks: {},
    accounting: emptyAccounting(),
  };
}

export interface MigrationProgress {
  stage: Stage;
  /** Replay's convergence estimate, once there is one. */
  estimate?: LagTrend;
  service: string;
  strategy: Strategy;
  sourceNode: string | null;
  targetNode: string;
  lag: number | null;
  phases: PhaseTiming[];
  startedAt: number;
  elapsedMs: number;
}

export function phaseMs(report: Pick<MigrationReport, 'phases'>, phase: Phase): number {
  return report.phases.filter((p) => p.phase === phase).reduce((a, p) => a + p.ms, 0);
}
