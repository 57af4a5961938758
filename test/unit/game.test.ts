import { describe, expect, it } from 'vitest';
import { applyGameEvent, eventFor, initialGameState, scoreboard } from '../../examples/game/game';
import { expectedScoreboard } from '../../cli/workloads';
import { canonicalJson } from '../../service/protocol';

describe('example game service', () => {
  it('keeps per-player sessions and counts applications per producer', () => {
    const s = initialGameState(0);
    applyGameEvent(s, { player: 'p1', action: 'join' }, 'x');
    applyGameEvent(s, { player: 'p1', action: 'score', points: 5 }, 'x');
    const r = applyGameEvent(s, { player: 'p1', action: 'move' }, 'y');
    expect(r).toEqual({ player: 'p1', score: 5, moves: 1, online: true });
    expect(s.appliedByProducer).toEqual({ x: 2, y: 1 });
  });
  it('pads the state to the requested size', () => {
    const s = initialGameState(1024 * 1024 + 5);
    expect(s.ballast.reduce((a, c) => a + c.byteLength, 0)).toBe(1024 * 1024 + 5);
  });
  it('rebuilds the same scoreboard from the producers log whatever the interleaving', () => {
    const published = [1, 2, 3].flatMap((seq) => [1, 2].map((i) => ({ producer: `run-p${i}`, seq, publishedAt: 0 })));
    const forward = expectedScoreboard(published, 'run', 20);
    const backward = expectedScoreboard([...published].reverse(), 'run', 20);
    expect(canonicalJson(forward)).toBe(canonicalJson(backward));
    const s = initialGameState(0);
    for (const p of published) applyGameEvent(s, eventFor(Number(p.producer.slice(5)) - 1, p.seq, 20), p.producer);
    expect(canonicalJson(scoreboard(s))).toBe(canonicalJson(forward));
  });
});
