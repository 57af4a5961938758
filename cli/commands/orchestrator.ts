/** `ms2m orchestrator`: the orchestrator worker. */
import type { Command } from 'commander';
import type * as Orchestrator from '../../workers/orchestrator';

export interface OrchestratorDeps {
  runOrchestrator(): Promise<void>;
}

/** Loaded when the command runs, so the other commands start without the worker's dependencies. */
const defaults: OrchestratorDeps = { runOrchestrator: () => (require('../../workers/orchestrator') as typeof Orchestrator).runOrchestrator() };

export function registerOrchestrator(program: Command, deps: OrchestratorDeps = defaults): Command {
  return program
    .command('orchestrator')
    .description('run the orchestrator worker (workflows, broker and cluster activities)')
    .action(() => deps.runOrchestrator());
}
