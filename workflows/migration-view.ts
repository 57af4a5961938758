/**
 * What a migration shows while it runs: the `progress` and `report` queries, its search attributes
 * (service, nodes, strategy, phase) and its current details in the Web UI; and the phase timer every
 * phase runs under. Workflow code.
 */
import * as otel from '@opentelemetry/api';
import { CancellationScope, CancelledFailure, log, setCurrentDetails, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import { setLogContext } from './log-context';
import { progressQuery, reportQuery } from '../lib/contracts';
import { PHASES, type MigrateRequest, type MigrationProgress, type MigrationReport, type Phase, type Stage } from '../lib/migration';
import { SA_PHASE, SA_SERVICE, SA_SOURCE_NODE, SA_STRATEGY, SA_TARGET_NODE } from '../lib/search-attributes';

export class MigrationView {
  stage: Stage = 'validate';
  lag: number | null = null;
  estimate: MigrationProgress['estimate'];
  private sourceNode: string | null = null;

  constructor(
    private readonly input: MigrateRequest,
    private readonly report: MigrationReport,
  ) {
    setHandler(progressQuery, () => ({
      stage: this.stage,
      service: input.service,
      strategy: input.strategy,
      sourceNode: this.sourceNode,
      targetNode: input.targetNode,
      lag: this.lag,
      estimate: this.estimate,
      phases: report.phases,
      startedAt: report.startedAt,
      elapsedMs: Date.now() - report.startedAt,
    }));
    setHandler(reportQuery, () => report);
    upsertSearchAttributes([
      { key: SA_SERVICE, value: input.service },
      { key: SA_TARGET_NODE, value: input.targetNode },
      { key: SA_STRATEGY, value: input.strategy },
    ]);
  }

  /** Once validate knows where the service runs. */
  sourceIs(node: string): void {
    this.sourceNode = node;
    upsertSearchAttributes([{ key: SA_SOURCE_NODE, value: node }]);
  }

  /** When the current stage was entered. */
  private stageAt = Date.now();

  /** Enters a stage: one that is not a phase (rollback, done, rolled-back), or the second phase of a combined step. */
  enter(stage: Stage): void {
    this.stage = stage;
    setLogContext({ phase: stage });
    log.info(`${this.input.service}: ${stage}`);
    this.stageAt = Date.now();
    this.show();
  }

  show(): void {
    const { input, stage, lag } = this;
    upsertSearchAttributes([{ key: SA_PHASE, value: stage }]);
    const done = this.report.phases.map((p) => `${p.phase} ${p.ms} ms`).join(', ');
    setCurrentDetails(
      `**${input.service}** ${this.sourceNode ?? '?'} → ${input.targetNode} (${input.strategy})\n\n` +
        `phase: **${stage}**${lag !== null ? ` · replay lag ${lag}` : ''}\n\n${done ? `done: ${done}` : ''}`,
    );
  }

  /**
   * The last phase ran as one activity with the next one (checkpoint and transfer on the source's agent):
   * its last `ms` were that next phase, which is recorded as such.
   */
  splitLast(next: Phase, ms: number): void {
    const last = this.report.phases[this.report.phases.length - 1];
    const part = Math.min(Math.max(0, Math.round(ms)), last.ms);
    last.ms -= part;
    this.report.phases.push({ phase: next, startedAt: last.startedAt + last.ms, ms: part });
    // Its span, after the fact: it ran inside the activity of the phase before.
    tracer().startSpan(`phase ${next}`, { startTime: last.startedAt + last.ms, attributes: this.spanAttributes(next) }).end(Date.now());
    // Where the migration stands now: a cancellation before the next phase is reported after this one.
    this.stage = next;
    setLogContext({ phase: next });
  }

  /**
   * Goes on with the phase that the last combined step began (splitLast): no check for a cancellation
   * before it, since it has begun; its time runs on until `fn` ends.
   */
  async continuePhase<T>(name: Phase, fn: () => Promise<T>): Promise<T> {
    const last = this.report.phases[this.report.phases.length - 1];
    if (last?.phase !== name) return this.phase(name, fn);
    this.enter(name);
    return traced(`phase ${name} (continued)`, this.spanAttributes(name), async () => {
      try {
        return await fn();
      } finally {
        last.ms = Date.now() - last.startedAt;
      }
    });
  }

  /** A phase span's attributes: the migration's, so each span can be found on its own. */
  private spanAttributes(phase: string): otel.Attributes {
    return { 'ms2m.phase': phase, 'ms2m.migration_id': this.report.migrationId, 'ms2m.service': this.input.service, 'ms2m.strategy': this.input.strategy };
  }

  /** Runs a phase, timed into the report; a cancellation that arrived while an activity finished anyway still stops the next phase. */
  async phase<T>(name: Phase, fn: () => Promise<T>): Promise<T> {
    if (name !== 'finalize' && !this.report.sourceLost && CancellationScope.current().consideredCancelled) throw new CancelledFailure(`migration cancelled before ${name}`);
    this.enter(name);
    const t0 = Date.now();
    try {
      return await traced(`phase ${name}`, this.spanAttributes(name), fn);
    } finally {
      // A step of two phases in one activity that failed in its second part moved the stage on.
      const moved = this.stage !== name && (PHASES as readonly string[]).includes(this.stage) ? (this.stage as Phase) : null;
      const split = moved ? this.stageAt : Date.now();
      this.report.phases.push({ phase: name, startedAt: t0, ms: split - t0 });
      if (moved) this.report.phases.push({ phase: moved, startedAt: split, ms: Date.now() - split });
    }
  }
}

/**
 * The workflow's tracer: the one @temporalio/interceptors-opentelemetry registers in the workflow's
 * sandbox when the worker traces (its spans go out through a sink); a no-op tracer otherwise.
 */
const tracer = (): otel.Tracer => otel.trace.getTracer('ms2m');

/** Runs `fn` in a span of its own, the parent of the activities it schedules. */
function traced<T>(name: string, attributes: otel.Attributes, fn: () => Promise<T>): Promise<T> {
  return tracer().startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn();
    } catch (err) {
      span.setStatus({ code: otel.SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}
