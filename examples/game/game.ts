/**
 * The example stateful service, in the spirit of the MS2M paper's game backend: per-player sessions and
 * scores kept in memory, one result per event published to an output exchange. The reducer is pure so the
 * verification can rebuild the expected state from the producers' log.
 */
import { ballast } from '../footprint';

export interface GameEvent {
  player: string;
  action: 'join' | 'move' | 'score' | 'leave';
  points?: number;
}

export interface PlayerSession {
  score: number;
  moves: number;
  online: boolean;
  /** The last few point values, a little per-player history as a real session would keep. */
  recent: number[];
}

export interface GameState {
  players: Record<string, PlayerSession>;
  /** Events applied per producer, counted by the application itself: a second application shows here. */
  appliedByProducer: Record<string, number>;
  /** Padding that gives the process a realistic memory footprint for checkpoint measurements. */
  ballast: Buffer[];
}

export interface GameResult {
  player: string;
  score: number;
  moves: number;
  online: boolean;
}

export function gameTopology(service: string) {
  return {
    exchange: `${service}.events`,
    queue: `${service}.primary`,
    outputExchange: `${service}.results`,
  };
}

export function initialGameState(ballastBytes = 0): GameState {
  return { players: {}, appliedByProducer: {}, ballast: ballast(ballastBytes) };
}

export function applyGameEvent(state: GameState, event: GameEvent, producer: string | undefined): GameResult {
  const p = (state.players[event.player] ??= { score: 0, moves: 0, online: false, recent: [] });
  switch (event.action) {
    case 'join':
      p.online = true;
      break;
    case 'leave':
      p.online = false;
      break;
    case 'move':
      p.moves++;
      break;
    case 'score':
      p.score += event.points ?? 0;
      p.recent.push(event.points ?? 0);
      if (p.recent.length > 8) p.recent.shift();
      break;
  }
  if (producer) state.appliedByProducer[producer] = (state.appliedByProducer[producer] ?? 0) + 1;
  return { player: event.player, score: p.score, moves: p.moves, online: p.online };
}

/**
 * The order-independent part of the state (scores, moves, applications per producer): what any
 * interleaving of the same messages, each applied once, must produce. Verification rebuilds it from the
 * producers' log and compares it with the final instance's.
 */
export function scoreboard(state: GameState): { players: Record<string, [number, number]>; appliedByProducer: Record<string, number> } {
  const players: Record<string, [number, number]> = {};
  for (const [name, p] of Object.entries(state.players)) players[name] = [p.score, p.moves];
  return { players, appliedByProducer: state.appliedByProducer };
}

/** What the fence compares: everything but the constant padding. */
export function gameDigestView(state: GameState): unknown {
  return { players: state.players, appliedByProducer: state.appliedByProducer };
}

/** A deterministic event stream for a producer, so runs are reproducible. */
export function eventFor(producerIndex: number, seq: number, players: number): GameEvent {
  const n = (seq * 2654435761 + producerIndex * 40503) >>> 0;
  const player = `p${(n % players).toString().padStart(4, '0')}`;
  const r = (n >>> 8) % 10;
  const action: GameEvent['action'] = r === 0 ? 'join' : r === 1 ? 'leave' : r < 5 ? 'move' : 'score';
  return action === 'score' ? { player, action, points: 1 + ((n >>> 12) % 50) } : { player, action };
}
