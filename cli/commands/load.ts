/** `ms2m load`: stamped game events to a service's input exchange, at a rate, for a while, from several producers. */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { gameTopology } from '../../examples/game/game';
import { loadConfig } from '../../lib/config';
import type * as Loadgen from '../../examples/loadgen';
import type { LoadOptions } from '../../examples/loadgen';
import type { Published } from '../../service/producer';
import { positive } from '../options';
import { processIo, type Io } from './context';

export interface LoadCliOptions {
  service: string;
  rate: number;
  durationMs: number;
  producers: number;
  log?: string;
}

/** The part of examples/loadgen.ts's LoadGenerator the command drives. */
export interface Load {
  start(): Promise<void>;
  finished(): Promise<void>;
  stop(): Promise<void>;
  readonly published: Published[];
  readonly publishFailures: number;
}

export interface LoadDeps extends Pick<Io, 'out'> {
  makeLoad(o: LoadOptions): Promise<Load>;
  writeFile(file: string, text: string): void;
}

const defaults: LoadDeps = {
  out: processIo.out,
  makeLoad: async (o) => new (require('../../examples/loadgen') as typeof Loadgen).LoadGenerator(o),
  writeFile: (file, text) => writeFileSync(file, text),
};

export function registerLoad(program: Command, deps: LoadDeps = defaults): Command {
  return program
    .command('load')
    .description("publish stamped game events to a service's input exchange at a rate, for a duration, from several producers")
    .requiredOption('--service <name>', 'service whose exchange receives the load, e.g. game')
    .option('--rate <msgs>', 'messages per second across all producers', positive('--rate'), 50)
    .option('--duration-ms <ms>', 'how long to publish', positive('--duration-ms', true, '30000'), 30_000)
    .option('--producers <n>', 'number of producers', positive('--producers', true, '4'), 4)
    .option('--log <file>', 'write every confirmed publish (producer, seq, time) as JSON lines')
    .action(async (o: LoadCliOptions) => {
      const load = await deps.makeLoad({
        amqpUrl: loadConfig().amqpUrl,
        exchange: gameTopology(o.service).exchange,
        rate: o.rate,
        producers: o.producers,
        durationMs: o.durationMs,
        producerPrefix: `${o.service}-load-${Date.now().toString(36)}`,
      });
      await load.start();
      await load.finished();
      await load.stop();
      if (o.log) deps.writeFile(o.log, load.published.map((p) => JSON.stringify(p)).join('\n') + '\n');
      deps.out(`[ms2m] published ${load.published.length} messages (${load.publishFailures} failed) in ${o.durationMs} ms`);
    });
}
