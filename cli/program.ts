/**
 * The ms2m command line, assembled from one module per command (or group) under cli/commands/, each
 * exporting a `registerX(program, deps)` that adds its command to the program. Their order here is the
 * order `ms2m --help` lists them in.
 */
import { Command } from 'commander';
import { registerAgent } from './commands/agent';
import { registerChaos } from './commands/chaos';
import { registerCordon } from './commands/cordon';
import { registerDemo } from './commands/demo';
import { registerDeploy } from './commands/deploy';
import { registerDrain } from './commands/drain';
import { registerLoad } from './commands/load';
import { registerMigrate } from './commands/migrate';
import { registerMigrations } from './commands/migrations';
import { registerOrchestrator } from './commands/orchestrator';
import { registerRebalance } from './commands/rebalance';
import { registerSchedule } from './commands/schedule';
import { registerStack } from './commands/stack';
import { registerUndeploy } from './commands/undeploy';
import { registerWatch } from './commands/watch';

/**
 * `configure` runs before any command is added, so what it sets on the program (exitOverride,
 * configureOutput: a test's) is inherited by every command.
 */
export function buildProgram(configure: (program: Command) => void = () => undefined): Command {
  const program = new Command('ms2m').description('Live migration of stateful RabbitMQ consumers with CRIU, orchestrated by Temporal').showHelpAfterError();
  configure(program);
  registerDemo(program);
  registerStack(program);
  registerOrchestrator(program);
  registerAgent(program);
  registerChaos(program);
  registerLoad(program);
  registerMigrate(program);
  registerDeploy(program);
  registerUndeploy(program);
  registerRebalance(program);
  registerDrain(program);
  registerCordon(program);
  registerSchedule(program);
  registerMigrations(program);
  registerWatch(program);
  return program;
}
