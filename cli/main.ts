#!/usr/bin/env node
/**
 * ms2m command line: the demo (`npm start`), the dev stack, the workers, deploying services, migrations
 * (started, listed, watched live), rebalancing, draining and rebalance schedules. All but demo, chaos and
 * load talk to running workers through the SDK (sdk/). Each command is a module of cli/commands/; this
 * only runs the program cli/program.ts assembles from them.
 */
import { failureText } from './commands/context';
import { buildProgram } from './program';

buildProgram()
  .parseAsync(process.argv)
  .catch((err: Error) => {
    console.error(`[ms2m] error: ${failureText(err)}`);
    process.exit(1);
  });
