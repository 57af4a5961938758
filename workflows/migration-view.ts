/**
 * What a migration shows while it runs: the `progress` and `report` queries, its search attributes
 * (service, nodes, strategy, phase) and its current details in the Web UI; and the phase timer every
 * phase runs under. Workflow code.
 */
import { CancellationScope, CancelledFailure, setCurrentDetails, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import { progressQuery, reportQuery } from '../lib/contracts';
import type { MigrateRequest, MigrationProgress, MigrationReport, Phase, Stage } from '../lib/migration';
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

  /** Enters a stage that is not a phase (rollback, done, rolled-back). */
  enter(stage: Stage): void {
    this.stage = stage;
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

  /** Runs a phase, timed into the report; a cancellation that arrived while an activity finished anyway still stops the next phase. */
  async phase<T>(name: Phase, fn: () => Promise<T>): Promise<T> {
    if (name !== 'finalize' && !this.report.sourceLost && CancellationScope.current().consideredCancelled) throw new CancelledFailure(`migration cancelled before ${name}`);
    this.enter(name);
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      this.report.phases.push({ phase: name, startedAt: t0, ms: Date.now() - t0 });
    }
  }
}
