/**
 * The example services the demo, the tests, the benchmark and the chaos command migrate, each with how
 * to deploy it, what its producers send and how to judge its final state from the producers' log:
 * - `game`: per-player sessions and scores; its state is the same in any order of the same messages.
 * - `ledger`: transfers refused when the payer cannot cover them, under a hash chain; its state depends
 *   on the order of every message, and its apply trace lets the oracle compare instances message by message.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { applyGameEvent, eventFor, gameTopology, initialGameState, scoreboard } from '../examples/game/game';
import { ledgerTopology, transferFor, type LedgerState } from '../examples/ledger/ledger';
import { checkLedger, parseTrace, type LedgerCheck } from '../examples/ledger/oracle';
import { loadConfig } from '../lib/config';
import type { LocalSpec } from '../runtimes/types';
import type { OutputRecord } from '../lib/output-log';
import type { Published } from '../service/producer';
import { canonicalJson, type InstanceStatus } from '../service/protocol';

export const WORKLOADS = ['game', 'ledger'] as const;
export type WorkloadName = (typeof WORKLOADS)[number];

export interface Topology {
  exchange: string;
  queue: string;
  outputExchange: string;
}

export interface JudgeInput {
  service: string;
  home: string;
  producerPrefix: string;
  published: Published[];
  outputs: OutputRecord[];
  final: InstanceStatus;
  /** Instances killed outright during the run (a source lost mid-migration). */
  killed: string[];
}

export interface Judgement {
  /** Applications per producer, as the final instance's application counted them. */
  appliedByProducer: Record<string, number>;
  finalStateMatchesProducers: boolean;
  /** The ledger's order check (see examples/ledger/oracle.ts). */
  order?: LedgerCheck;
}

export interface Workload {
  name: WorkloadName;
  topology(service: string): Topology;
  spec(service: string, o: { home: string; stateBytes: number; workMs: number }): LocalSpec;
  /** What producer `index` sends as its `seq`-th message. */
  message(index: number, seq: number): { routingKey: string; body: unknown };
  /** Relative producer rates. */
  weights(producers: number): number[];
  /** Called before a deploy: forgets what an earlier run of the same service left. */
  reset(service: string, home: string): void;
  judge(j: JudgeInput): Judgement;
}

const PLAYERS = 200;

/** The order-independent state the final instance must hold if every published message was applied once. */
export function expectedScoreboard(published: Published[], producerPrefix: string, players = PLAYERS) {
  const state = initialGameState(0);
  for (const p of published) {
    const index = Number(p.producer.slice(producerPrefix.length + 2)) - 1;
    applyGameEvent(state, eventFor(index, p.seq, players), p.producer);
  }
  return scoreboard(state);
}

function serviceSpec(script: string, service: string, env: Record<string, string>, queue: string): LocalSpec {
  const cfg = loadConfig();
  return {
    runtime: 'local',
    command: [process.execPath, path.join(cfg.projectRoot, 'dist', 'examples', script, 'service.js')],
    // MS2M_AMQP_URL comes from the node agent: a spec is kept in the deploy workflow's history.
    env: { MS2M_SERVICE: service, ...env },
    primaryQueue: queue,
  };
}

const game: Workload = {
  name: 'game',
  topology: gameTopology,
  spec: (service, o) =>
    serviceSpec('game', service, { MS2M_STATE_BYTES: String(o.stateBytes), MS2M_WORK_MS: String(o.workMs) }, gameTopology(service).queue),
  message(index, seq) {
    const event = eventFor(index, seq, PLAYERS);
    return { routingKey: `event.${event.player}`, body: event };
  },
  weights: (producers) => Array.from({ length: producers }, () => 1),
  reset: () => undefined,
  judge(j) {
    const board = j.final.app.scoreboard as ReturnType<typeof scoreboard>;
    const appliedByProducer = Object.fromEntries(Object.entries(board.appliedByProducer).filter(([p]) => p.startsWith(j.producerPrefix)));
    return { appliedByProducer, finalStateMatchesProducers: canonicalJson(expectedScoreboard(j.published, j.producerPrefix)) === canonicalJson(board) };
  },
};

/** The ledger's producers run at rates like 10, 25 and 45 msg/s: the shape that found the reordering. */
const LEDGER_WEIGHTS = [10, 25, 45];

export function tracePath(home: string, service: string): string {
  return path.join(home, 'traces', `${service}.jsonl`);
}

const ledger: Workload = {
  name: 'ledger',
  topology: ledgerTopology,
  spec(service, o) {
    mkdirSync(path.dirname(tracePath(o.home, service)), { recursive: true });
    return serviceSpec(
      'ledger',
      service,
      { MS2M_STATE_BYTES: String(o.stateBytes), MS2M_WORK_MS: String(o.workMs), MS2M_LEDGER_TRACE: tracePath(o.home, service) },
      ledgerTopology(service).queue,
    );
  },
  message(index, seq) {
    const t = transferFor(index, seq);
    return { routingKey: `transfer.${t.from}`, body: t };
  },
  weights: (producers) => Array.from({ length: producers }, (_, i) => LEDGER_WEIGHTS[i % LEDGER_WEIGHTS.length] * (1 + Math.floor(i / LEDGER_WEIGHTS.length))),
  reset(service, home) {
    // The trace belongs to one deployment: an earlier one's positions would collide with the new one's.
    rmSync(tracePath(home, service), { force: true });
  },
  judge(j) {
    const view = (j.final.app.ledger ?? {}) as Omit<LedgerState, 'ballast'>;
    const file = tracePath(j.home, j.service);
    const order = checkLedger({
      trace: existsSync(file) ? parseTrace(readFileSync(file, 'utf8')) : [],
      published: j.published,
      producerPrefix: j.producerPrefix,
      outputs: j.outputs,
      final: view,
      killed: j.killed,
    });
    const appliedByProducer = Object.fromEntries(Object.entries(view.appliedByProducer ?? {}).filter(([p]) => p.startsWith(j.producerPrefix)));
    return { appliedByProducer, finalStateMatchesProducers: order.ok, order };
  },
};

export function workload(name: WorkloadName): Workload {
  return name === 'ledger' ? ledger : game;
}
