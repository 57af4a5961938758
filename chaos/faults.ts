/**
 * The faults ms2m is tested against, each a way to break one migration of an example service on the
 * local runtime: worker processes killed (SIGKILL) and restarted inside a given phase, a broken image
 * path, RabbitMQ restarted, the copy or the source crashing, the migration cancelled. Failpoints (see
 * lib/failpoints.ts) hold the migration inside the phase while the fault is applied, so each fault lands
 * where its name says. The fault tests and `ms2m chaos` share this list.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import type { ClusterHandle } from '../runtimes/types';
import { reportQuery } from '../lib/contracts';
import type { ScenarioOptions } from '../cli/scenario';
import { armFailpoint, releaseFailpoint, waitForFailpoint, type FailpointSpec } from '../lib/failpoints';
import type { MigrationReport, Phase, Strategy } from '../lib/migration';
import { restartBroker } from '../lib/rabbit-admin';

export type Outcome = 'completed' | 'rolled-back';

export interface FaultContext {
  cluster: ClusterHandle;
  handle: WorkflowHandle;
  service: string;
  from: string;
  to: string;
  log(line: string): void;
}

export interface Fault {
  name: string;
  description: string;
  strategy: Strategy;
  /** The outcomes that are correct for this fault (either means: whichever happens, nothing may be lost). */
  outcomes: Outcome[];
  /** The workflow itself ends cancelled. */
  cancels?: boolean;
  scenario?: Partial<ScenarioOptions>;
  inject(ctx: FaultContext): Promise<void>;
}

/** Where each phase of a migration can be held: a failpoint at the start of an activity that runs in it. */
export function phaseFailpoint(phase: Phase, from: string, to: string): string {
  switch (phase) {
    case 'validate':
      // The source's agent probes its instance (describeAndProbe).
      return `${from}/probeService`;
    case 'prepare':
      return 'orchestrator/prepareReplay';
    case 'checkpoint':
      return `${from}/checkpoint`;
    case 'transfer':
      return `${from}/transfer`;
    case 'restore':
      return `${to}/restore`;
    case 'replay':
      return `${to}/replayUntil`;
    case 'fence':
      // Inside the fence-and-swap, after the source stopped consuming: the handoff is half done.
      return `${to}/fenced`;
    case 'finalize':
      return `${from}/stopInstance`;
  }
}

const REACH_MS = 90_000;

/** Holds the migration at a failpoint, does `act` there, then lets it go on. */
async function at(ctx: FaultContext, point: string, act: () => Promise<void>, spec: FailpointSpec = { action: 'pause' }): Promise<void> {
  const home = ctx.cluster.opts.home;
  armFailpoint(home, point, spec);
  try {
    await waitForFailpoint(home, point, REACH_MS);
    ctx.log(`fault: reached ${point}`);
    await act();
  } finally {
    releaseFailpoint(home, point);
  }
}

/** The pid of a service instance from its node agent's registry. */
function pidOf(ctx: FaultContext, node: string, instanceId: string): number {
  const rec = JSON.parse(readFileSync(path.join(ctx.cluster.opts.home, 'nodes', node, 'instances', `${instanceId}.json`), 'utf8')) as { pid: number };
  return rec.pid;
}

async function report(ctx: FaultContext): Promise<MigrationReport> {
  return ctx.handle.query(reportQuery);
}

const PHASES_SHADOW: Phase[] = ['validate', 'prepare', 'checkpoint', 'transfer', 'restore', 'replay', 'fence', 'finalize'];

function orchestratorKilled(phase: Phase): Fault {
  return {
    name: `orchestrator-killed@${phase}`,
    description: `the orchestrator worker is SIGKILLed during ${phase} and restarted`,
    strategy: 'shadow',
    // Temporal resumes the workflow where it was: the migration completes.
    outcomes: ['completed'],
    inject: (ctx) => at(ctx, phaseFailpoint(phase, ctx.from, ctx.to), () => ctx.cluster.crashAndRestart('orchestrator')),
  };
}

function cancelled(phase: Phase): Fault {
  // From the fence on, the handoff finishes: a cancellation then is too late and is ignored.
  const late = phase === 'fence' || phase === 'finalize';
  return {
    name: `cancelled@${phase}`,
    description: `the migration is cancelled (as from the Web UI or \`temporal workflow cancel\`) during ${phase}`,
    strategy: 'shadow',
    outcomes: late ? ['completed'] : ['rolled-back'],
    cancels: !late,
    inject: (ctx) =>
      at(ctx, phaseFailpoint(phase, ctx.from, ctx.to), async () => {
        await ctx.handle.cancel();
        // Long enough for the cancellation to reach the held activity (by heartbeat) before it is let go.
        await sleep(1500);
      }),
  };
}

/**
 * The source's agent killed at each moment of a cold checkpoint: before CRIU starts, while CRIU dumps
 * (held by its post-dump action script, the process frozen), and after CRIU exited but before the image
 * was recorded complete. CRIU outlives its agent; the retry must neither lose the source nor the image.
 */
const COLD_CHECKPOINT_MOMENTS: Array<{ moment: string; point: (node: string) => string; what: string }> = [
  { moment: 'before-criu', point: (n) => `${n}/checkpoint`, what: 'before CRIU starts' },
  { moment: 'criu-dumping', point: (n) => `${n}/criu-dump`, what: 'while CRIU dumps (the process frozen)' },
  { moment: 'criu-exited', point: (n) => `${n}/checkpoint-dumped`, what: 'after CRIU exited, before the image is recorded' },
];

export const FAULTS: Fault[] = [
  ...PHASES_SHADOW.map(orchestratorKilled),
  {
    name: 'source-agent-killed@checkpoint',
    description: "the source node's agent is SIGKILLed during checkpoint and restarted",
    strategy: 'shadow',
    outcomes: ['completed'],
    inject: (ctx) => at(ctx, `${ctx.from}/checkpoint`, () => ctx.cluster.crashAndRestart(`agent-${ctx.from}`)),
  },
  ...COLD_CHECKPOINT_MOMENTS.map(
    ({ moment, point, what }): Fault => ({
      name: `source-agent-killed@cold-checkpoint:${moment}`,
      description: `stop-and-copy: the source node's agent is SIGKILLed ${what}, and restarted`,
      strategy: 'stop-and-copy',
      outcomes: ['completed', 'rolled-back'],
      inject: (ctx) => at(ctx, point(ctx.from), () => ctx.cluster.crashAndRestart(`agent-${ctx.from}`)),
    }),
  ),
  {
    name: 'source-agent-killed@transfer',
    description: "the source node's agent is SIGKILLed while it sends the image, and restarted",
    strategy: 'shadow',
    outcomes: ['completed'],
    inject: (ctx) => at(ctx, `${ctx.to}/receive-file`, () => ctx.cluster.crashAndRestart(`agent-${ctx.from}`)),
  },
  {
    name: 'target-agent-killed@transfer',
    description: "the target node's agent is SIGKILLed while it receives the image, and restarted",
    strategy: 'shadow',
    outcomes: ['completed'],
    inject: (ctx) => at(ctx, `${ctx.to}/receive-file`, () => ctx.cluster.crashAndRestart(`agent-${ctx.to}`)),
  },
  {
    name: 'target-agent-killed@restore',
    description: "the target node's agent is SIGKILLed after CRIU restored the copy (still stopped), and restarted",
    strategy: 'shadow',
    outcomes: ['completed'],
    inject: (ctx) => at(ctx, `${ctx.to}/restore-stopped`, () => ctx.cluster.crashAndRestart(`agent-${ctx.to}`)),
  },
  {
    name: 'image-corrupted@transfer',
    description: 'a byte of an image file is flipped in transit; the checksum catches it and the file is sent again',
    strategy: 'shadow',
    outcomes: ['completed'],
    inject: async (ctx) => armFailpoint(ctx.cluster.opts.home, `${ctx.to}/receive-file`, { action: 'corrupt' }),
  },
  {
    name: 'connection-cut@transfer',
    description: 'the network path drops mid-file, leaving a partial file; the transfer is retried',
    strategy: 'shadow',
    outcomes: ['completed'],
    inject: async (ctx) => armFailpoint(ctx.cluster.opts.home, `${ctx.to}/receive-file`, { action: 'cut' }),
  },
  {
    name: 'target-disk-failing@transfer',
    description: "the target's disk fails on every write; the migration rolls back",
    strategy: 'shadow',
    outcomes: ['rolled-back'],
    inject: async (ctx) => armFailpoint(ctx.cluster.opts.home, `${ctx.to}/receive-file`, { action: 'fail', times: 1000, message: 'ENOSPC: no space left on device (injected)' }),
  },
  {
    name: 'rabbitmq-restarted@replay',
    description: 'RabbitMQ is restarted (every connection dropped) during replay',
    strategy: 'shadow',
    outcomes: ['completed'],
    inject: (ctx) => at(ctx, phaseFailpoint('replay', ctx.from, ctx.to), async () => ctx.log(`broker down ${(await restartBroker()).downMs} ms`)),
  },
  {
    name: 'rabbitmq-restarted@fence',
    description: 'RabbitMQ is restarted while the source is fenced and the copy catches up',
    strategy: 'shadow',
    outcomes: ['completed'],
    inject: (ctx) => at(ctx, phaseFailpoint('fence', ctx.from, ctx.to), async () => ctx.log(`broker down ${(await restartBroker()).downMs} ms`)),
  },
  {
    name: 'source-stalled@prepare',
    description: 'the source is stopped (SIGSTOP) for 5 s as the migration asks it to write its apply log; prepare gives up on its bound and rolls back',
    strategy: 'shadow',
    outcomes: ['rolled-back'],
    inject: async (ctx) => {
      const home = ctx.cluster.opts.home;
      const point = phaseFailpoint('prepare', ctx.from, ctx.to);
      armFailpoint(home, point, { action: 'pause' });
      let pid = 0;
      try {
        await waitForFailpoint(home, point, REACH_MS);
        pid = pidOf(ctx, ctx.from, (await report(ctx)).sourceInstance);
        process.kill(pid, 'SIGSTOP');
      } finally {
        releaseFailpoint(home, point);
      }
      // Longer than the command's bound (timeouts.controlReplyMs, 3 s in the fault runs), then it runs again.
      await sleep(5000);
      process.kill(pid, 'SIGCONT');
    },
  },
  {
    name: 'copy-crashed@replay',
    description: 'the restored copy is SIGKILLed during replay; the migration rolls back and the source keeps serving',
    strategy: 'shadow',
    outcomes: ['rolled-back'],
    inject: (ctx) =>
      at(ctx, phaseFailpoint('replay', ctx.from, ctx.to), async () => {
        process.kill(pidOf(ctx, ctx.to, (await report(ctx)).targetInstance), 'SIGKILL');
      }),
  },
  {
    name: 'source-crashed@replay',
    description: 'the source is SIGKILLed during replay; the copy adopts its stream (sealed replay queue, then the primary queue)',
    strategy: 'shadow',
    outcomes: ['completed'],
    inject: (ctx) =>
      at(ctx, phaseFailpoint('replay', ctx.from, ctx.to), async () => {
        process.kill(pidOf(ctx, ctx.from, (await report(ctx)).sourceInstance), 'SIGKILL');
      }),
  },
  ...PHASES_SHADOW.map(cancelled),
  {
    name: 'page-stream-corrupted@checkpoint',
    description: 'transfer "stream": a byte of the page stream is flipped on its way to the target; TLS refuses it, the dump fails and is done again',
    strategy: 'shadow',
    outcomes: ['completed'],
    scenario: { mechanisms: { transfer: 'stream', lazy: false } },
    inject: async (ctx) => armFailpoint(ctx.cluster.opts.home, `${ctx.to}/receive-stream`, { action: 'corrupt' }),
  },
  {
    name: 'source-crashed@lazy',
    description: 'lazy: the source is SIGKILLed while its copy fetches its pages; they come from its node\'s image, and the copy adopts its stream',
    strategy: 'shadow',
    outcomes: ['completed'],
    scenario: { mechanisms: { transfer: 'files', lazy: true } },
    inject: (ctx) =>
      at(ctx, `${ctx.from}/serve-lazy-pages`, async () => {
        process.kill(pidOf(ctx, ctx.from, (await report(ctx)).sourceInstance), 'SIGKILL');
      }),
  },
  {
    name: 'source-agent-killed@lazy',
    description: "lazy: the source node's agent (the copy's page server) is SIGKILLed while the copy fetches its pages; the restore or the copy is killed before the copy can take over, and the source keeps serving",
    strategy: 'shadow',
    outcomes: ['rolled-back'],
    scenario: { mechanisms: { transfer: 'files', lazy: true } },
    inject: (ctx) => at(ctx, `${ctx.from}/serve-lazy-pages`, () => ctx.cluster.crashAndRestart(`agent-${ctx.from}`)),
  },
  {
    name: 'target-agent-killed@lazy',
    description: "lazy: the target node's agent is SIGKILLed while the copy fetches its pages (the lazy-pages daemon outlives it), and restarted",
    strategy: 'shadow',
    outcomes: ['completed'],
    scenario: { mechanisms: { transfer: 'files', lazy: true } },
    inject: (ctx) => at(ctx, `${ctx.from}/serve-lazy-pages`, () => ctx.cluster.crashAndRestart(`agent-${ctx.to}`)),
  },
];

export function faultNamed(name: string): Fault {
  const f = FAULTS.find((x) => x.name === name);
  if (!f) throw new Error(`no fault named ${name}; known: ${FAULTS.map((x) => x.name).join(', ')}`);
  return f;
}
