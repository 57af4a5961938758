/** `ms2m schedule …`: periodic rebalancing with Temporal Schedules (create, list, describe, pause, unpause, trigger, delete). */
import type { Command } from 'commander';
import type { Ms2mClient } from '../../sdk';
import { formatSchedule, rebalanceInput, rebalanceOptions } from '../fleet-output';
import { duration } from '../options';
import { sdkDeps, type SdkDeps } from './context';

type ScheduleClient = Pick<
  Ms2mClient,
  'createRebalanceSchedule' | 'listSchedules' | 'describeSchedule' | 'pauseSchedule' | 'unpauseSchedule' | 'triggerSchedule' | 'deleteSchedule'
>;
export type ScheduleDeps = SdkDeps<ScheduleClient>;

/** Temporal counts whole seconds: at least one. */
export const everyOption = duration('--every', { min: 1000, example: '10m, 90s, 1h' });

const actions = {
  pause: (c: ScheduleClient, id: string, note?: string) => c.pauseSchedule(id, note),
  unpause: (c: ScheduleClient, id: string, note?: string) => c.unpauseSchedule(id, note),
  trigger: (c: ScheduleClient, id: string) => c.triggerSchedule(id),
  delete: (c: ScheduleClient, id: string) => c.deleteSchedule(id),
};

export function registerSchedule(program: Command, deps: ScheduleDeps = sdkDeps): Command {
  const schedule = program.command('schedule').description('periodic rebalancing (Temporal Schedules; a run due while the previous one runs is skipped)');
  rebalanceOptions(schedule.command('create'))
    .description('create a schedule that runs the rebalance workflow every interval')
    .requiredOption('--id <id>', 'schedule id')
    .requiredOption('--every <duration>', 'interval, e.g. 10m, 90s, 1h', everyOption)
    .option('--paused', 'create it paused')
    .action(async (o: Record<string, unknown> & { id: string; every: number; paused?: boolean }) => {
      const ms2m = await deps.connect();
      deps.out(formatSchedule(await ms2m.createRebalanceSchedule({ scheduleId: o.id, every: o.every, input: rebalanceInput(o), paused: o.paused })));
      return deps.exit(0);
    });
  schedule
    .command('list')
    .description('schedules that run the rebalance workflow')
    .action(async () => {
      const all = await (await deps.connect()).listSchedules();
      deps.out(all.length ? all.map(formatSchedule).join('\n') : 'no rebalance schedules');
      return deps.exit(0);
    });
  schedule
    .command('describe <id>')
    .description('a schedule: its input, recent runs with their workflow ids, next run times')
    .option('--json', 'as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const d = await (await deps.connect()).describeSchedule(id);
      deps.out(o.json ? JSON.stringify(d) : formatSchedule(d));
      return deps.exit(0);
    });
  for (const [name, act] of Object.entries(actions)) {
    const cmd = schedule.command(`${name} <id>`).description(`${name} a schedule`);
    if (name === 'pause' || name === 'unpause') cmd.option('--note <text>', 'why, shown with the schedule');
    cmd.action(async (id: string, o: { note?: string }) => {
      await act(await deps.connect(), id, o.note);
      deps.out(`[ms2m] schedule ${id}: ${name}${name.endsWith('e') ? 'd' : 'ed'}`);
      return deps.exit(0);
    });
  }
  return schedule;
}
