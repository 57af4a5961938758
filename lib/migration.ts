/**
 * Inputs, progress and reports of migrations. Imported by the workflow sandbox, so it must stay free of
 * Node APIs and I/O.
 */
import { z } from 'zod';

export const STRATEGIES = ['stop-and-copy', 'shadow'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export const PHASES = ['validate', 'prepare', 'checkpoint', 'transfer', 'restore', 'replay', 'fence', 'finalize'] as const;
export type Phase = (typeof PHASES)[number];
export type Stage = Phase | 'rollback' | 'done' | 'rolled-back';

const NAME = /^[a-z][a-z0-9-]{0,39}$/;
const nameField = (field: string, example: string) =>
  z
    .string({ required_error: `${field} is required, e.g. "${example}"`, invalid_type_error: `${field} must be a string, e.g. "${example}"` })
    .regex(NAME, `${field} must be 1-40 lowercase letters, digits or dashes starting with a letter, e.g. "${example}"`);

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
        threshold: z.number({ invalid_type_error: 'replay.threshold must be a number of messages' }).int().min(0).max(1_000_000).default(10),
        /** Fence after this long in replay even if the threshold was not reached (the backlog then shows as downtime, never as loss). */
        cutoffMs: z.number({ invalid_type_error: 'replay.cutoffMs must be a number of milliseconds' }).int().min(0).max(3_600_000).default(120_000),
        /**
         * Fence early when the lag has not reached a new low for this long: the copy is not converging
         * (messages arrive as fast as it applies them), and waiting longer only delays the same catch-up.
         * 0 waits for the threshold or the cutoff.
         */
        stallMs: z.number({ invalid_type_error: 'replay.stallMs must be a number of milliseconds' }).int().min(0).max(3_600_000).default(5_000),
      })
      .strict()
      .default({}),
  })
  .strict();

export type MigrateInput = z.input<typeof MigrateInputSchema>;
export type MigrateRequest = z.output<typeof MigrateInputSchema>;

export const ServiceSpecSchema = z
  .object({
    /** argv of the service process, run by the node agent in its own PID and UTS namespaces. */
    command: z.array(z.string().min(1)).min(1, 'spec.command needs at least the program, e.g. ["node", "dist/examples/game/service.js"]'),
    env: z.record(z.string()).default({}),
    cwd: z.string().optional(),
    /** The queue the service consumes; the replay queue copies its bindings. */
    primaryQueue: z.string().min(1, 'spec.primaryQueue is required, e.g. "game.primary"'),
  })
  .strict();
export type ServiceSpec = z.output<typeof ServiceSpecSchema>;

export const DeployInputSchema = z
  .object({ service: nameField('service', 'game'), node: nameField('node', 'node-a'), spec: ServiceSpecSchema })
  .strict();
export type DeployInput = z.input<typeof DeployInputSchema>;

/** Turns a schema failure into one line per field, each naming the field and the fix. */
export function describeInputError(what: string, error: z.ZodError): string {
  const lines = error.issues.map((i) => {
    const field = i.path.join('.') || '(input)';
    if (i.code === 'unrecognized_keys') return `${field}: unknown field(s) ${i.keys.join(', ')}; remove them`;
    if (i.code === 'invalid_type' && i.received === 'undefined') return `${field}: ${i.message.startsWith(field) ? i.message : `${field} is required`}`;
    return `${field}: ${i.message}`;
  });
  return `invalid ${what} input: ${lines.join('; ')}`;
}

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
  /** Replay stopped converging and was ended early (see replay.stallMs). */
  stalled: boolean;
}

/** Measured from the producers' and the output logs by whoever generated the load, never by the workflow. */
export interface Verification {
  published: number;
  processed: number;
  lost: number;
  duplicated: number;
  duplicateOutputs: number;
  /** The longest wait, during the migration, of a message that nobody served (observed from outputs). */
  observedDowntimeMs: number;
  maxE2eLatencyMs: number;
  p99E2eLatencyMs: number;
  baselineMaxE2eLatencyMs: number;
  baselineP99E2eLatencyMs: number;
  /** The final state equals the one rebuilt from the producers' log. */
  finalStateMatchesProducers: boolean;
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
  /** After a rolled-back cold migration: the instance revived from the source's image on the source node. */
  revivedInstance?: string;
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
  replay: ReplayStats;
  stateMatch: boolean;
  sourceDigest: string;
  targetDigest: string;
  marks: Marks;
  verification?: Verification;
}

export interface MigrationProgress {
  stage: Stage;
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

/** Each node's agent polls its own task queue, named after the orchestrator's. */
export function nodeTaskQueue(orchestratorQueue: string, node: string): string {
  return `${orchestratorQueue}-node-${node}`;
}
