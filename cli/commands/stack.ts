/** `ms2m stack`: the dev stack (Temporal, RabbitMQ, CRIU), installed where missing and started; prints its coordinates. */
import type { Command } from 'commander';
import type * as Stack from '../../lib/stack';
import { processIo, type Io } from './context';

export interface StackDeps extends Pick<Io, 'out'> {
  ensureStack(): Promise<Record<string, string>>;
}

const defaults: StackDeps = { out: processIo.out, ensureStack: () => (require('../../lib/stack') as typeof Stack).ensureStack() };

export function registerStack(program: Command, deps: StackDeps = defaults): Command {
  return program
    .command('stack')
    .description('install what is missing and start the dev stack; prints its coordinates')
    .action(async () => {
      const env = await deps.ensureStack();
      for (const [k, v] of Object.entries(env)) deps.out(`${k}=${v}`);
    });
}
