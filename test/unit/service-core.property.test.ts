/**
 * Property tests of the service core: a source and its copy run the real core against a model of the
 * broker (service-core.model.ts) through random interleavings of publishes, producer resends,
 * deliveries, lost connections (unacknowledged deliveries redelivered when the broker notices, which
 * may be after newer messages went to someone else), lost confirms (apply-log entries
 * and outputs written twice), stale and repeated control commands, and the steps of one migration:
 * shadow, rolled back before or after the fence, adopted after the source died, or stop-and-copy.
 * After the random part, a fair scheduler finishes the migration and drains every queue.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { handoffRefusal, type ControlCommand } from '../../service/protocol';
import { PRIMARY, REPLAY, World, type Inst, type Reply } from './service-core.model';

const PLANS = ['shadow', 'rollback-before-fence', 'rollback-after-fence', 'adopt', 'stop-and-copy'] as const;
type Plan = (typeof PLANS)[number];

type Action =
  | { k: 'publish'; p: number }
  | { k: 'resend'; p: number; back: number }
  | { k: 'deliver'; copy: boolean; replay: boolean }
  | { k: 'process'; copy: boolean }
  | { k: 'drop'; copy: boolean }
  | { k: 'land' }
  | { k: 'lose-confirm'; copy: boolean }
  | { k: 'reconnect'; copy: boolean }
  | { k: 'advance'; midApply: boolean; meanwhile: number }
  | { k: 'retry' }
  | { k: 'stale'; copy: boolean; kind: ControlCommand['kind'] }
  | { k: 'status'; copy: boolean };

interface Scenario {
  plan: Plan;
  producers: number;
  actions: Action[];
}

const who = fc.boolean();
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ k: fc.constant('publish' as const), p: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('resend' as const), p: fc.nat(2), back: fc.nat(20) }) },
  { weight: 9, arbitrary: fc.record({ k: fc.constant('deliver' as const), copy: who, replay: fc.boolean() }) },
  { weight: 9, arbitrary: fc.record({ k: fc.constant('process' as const), copy: who }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('drop' as const), copy: who }) },
  { weight: 2, arbitrary: fc.constant({ k: 'land' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('lose-confirm' as const), copy: who }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('reconnect' as const), copy: who }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('advance' as const), midApply: fc.boolean(), meanwhile: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'retry' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('stale' as const),
      copy: who,
      kind: fc.constantFrom<ControlCommand['kind']>('shadow', 'replay', 'fence', 'catch-up', 'activate', 'unfence', 'adopt'),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('status' as const), copy: who }) },
);
const scenario: fc.Arbitrary<Scenario> = fc.record({ plan: fc.constantFrom(...PLANS), producers: fc.integer({ min: 1, max: 3 }), actions: fc.array(action, { maxLength: 300, size: 'max' }) });

const fencing = { migrationId: 'm1', epoch: 1 };

/** One migration, step by step, as the orchestrator drives it; a step is done once its command succeeded. */
class Migration {
  private step = 0;
  private readonly steps: Array<() => boolean>;
  last: { to: 'src' | 'copy'; cmd: ControlCommand } | null = null;
  fenced: Reply | null = null;
  caughtUp: Reply | null = null;

  constructor(
    private readonly w: World,
    plan: Plan,
  ) {
    const shadow = () => (w.declareReplay(), this.ok('src', { kind: 'shadow', queue: REPLAY, ...fencing }));
    const checkpoint = (midApply: boolean) => (w.checkpoint(midApply), true);
    const replay = () => this.ok('copy', { kind: 'replay', queue: REPLAY, ...fencing });
    const fence = () => this.ok('src', { kind: 'fence', ...fencing }, (r) => (this.fenced = r));
    const catchUp = () => {
      const r = this.send('copy', { kind: 'catch-up', upTo: this.fenced!.ok ? this.fenced!.applied : 0, ...fencing });
      if (!r?.ok || r.consuming === 'replay' || r.applied < (this.fenced as { applied: number }).applied) return false;
      this.caughtUp = r;
      return true;
    };
    const activate = () => this.ok('copy', { kind: 'activate', ...fencing });
    const unfence = () => this.ok('src', { kind: 'unfence', ...fencing });
    const end = (i: () => Inst) => () => (w.kill(i()), w.queues.delete(REPLAY), true);
    const adopt = () => {
      const r = this.send('copy', { kind: 'adopt', queue: REPLAY, ...fencing });
      return r?.ok === true && r.role === 'primary';
    };
    const c = () => w.copy!;
    const s = () => w.source;
    this.steps = {
      shadow: [shadow, () => checkpoint(this.midApply), replay, fence, catchUp, activate, end(s)],
      'rollback-before-fence': [shadow, () => checkpoint(this.midApply), replay, unfence, end(c)],
      'rollback-after-fence': [shadow, () => checkpoint(this.midApply), replay, fence, catchUp, unfence, end(c)],
      adopt: [shadow, () => checkpoint(this.midApply), replay, () => (w.kill(s()), w.seal(), true), adopt, () => (w.queues.delete(REPLAY), true)],
      'stop-and-copy': [fence, () => checkpoint(false), activate, end(s)],
    }[plan];
  }

  midApply = false;
  /** Deliveries the instance handles while the command of this step awaits its effects. */
  meanwhile = 0;

  get done(): boolean {
    return this.step >= this.steps.length;
  }

  get at(): number {
    return this.step;
  }

  advance(midApply = false, meanwhile = 0): boolean {
    if (this.done) return false;
    this.midApply = midApply;
    this.meanwhile = meanwhile;
    if (this.steps[this.step]()) this.step++;
    return true;
  }

  /** The orchestrator's retry of its last command (a timeout, an activity retried). */
  retry(): void {
    if (this.last) this.send(this.last.to, this.last.cmd);
  }

  private inst(to: 'src' | 'copy'): Inst | null {
    return to === 'src' ? this.w.source : this.w.copy;
  }

  private send(to: 'src' | 'copy', cmd: ControlCommand): Reply | null {
    const i = this.inst(to);
    if (!i) return null;
    this.last = { to, cmd };
    return this.w.send(i, cmd, this.meanwhile);
  }

  private ok(to: 'src' | 'copy', cmd: ControlCommand, keep?: (r: Reply) => void): boolean {
    const r = this.send(to, cmd);
    if (!r?.ok) return false;
    keep?.(r);
    return true;
  }
}

interface Outcome {
  world: World;
  migration: Migration;
  plan: Plan;
  /** Violations seen while running, in the order they happened. */
  seen: string[];
}

function staleCommand(kind: ControlCommand['kind']): ControlCommand {
  const old = { migrationId: 'm0', epoch: 0 };
  switch (kind) {
    case 'shadow':
    case 'replay':
    case 'adopt':
      return { kind, queue: 'ms2m.replay.svc.m0', ...old };
    case 'catch-up':
      return { kind, upTo: 1, ...old };
    case 'status':
      return { kind };
    default:
      return { kind, ...old };
  }
}

function run(sc: Scenario): Outcome {
  const w = new World();
  const m = new Migration(w, sc.plan);
  const seen: string[] = [];
  const pick = (copy: boolean) => (copy ? w.copy : w.source);
  const check = (what: string) => {
    for (const v of w.violations.splice(0)) seen.push(`${what}: ${v}`);
    const owners = w.instances.filter((i) => i.alive && i.core.role === 'primary' && !i.core.fenced);
    if (owners.length > 1) seen.push(`${what}: ${owners.map((i) => i.name).join(' and ')} both serve`);
    const c = w.copy;
    if (c && c.alive && c.core.role === 'standby') {
      if (c.core.applied > w.source.core.applied) seen.push(`${what}: the copy at ${c.core.applied} is ahead of the source at ${w.source.core.applied}`);
      if (m.fenced?.ok && c.core.applied > m.fenced.applied) seen.push(`${what}: the copy at ${c.core.applied} is past the fenced source's ${m.fenced.applied}`);
      const at = w.sourceAt[c.core.applied];
      if (at && at.chain !== c.app.chain) seen.push(`${what}: at position ${c.core.applied} the copy's chain differs from the source's`);
    }
  };
  for (const [n, a] of sc.actions.entries()) {
    const i = 'copy' in a ? pick(a.copy) : null;
    switch (a.k) {
      case 'publish':
        w.publish(`p${a.p % sc.producers}`);
        break;
      case 'resend':
        w.publish(`p${a.p % sc.producers}`, a.back);
        break;
      case 'deliver':
        if (i) w.deliver(i, a.replay ? 'replay' : 'primary');
        break;
      case 'process':
        if (i) w.process(i);
        break;
      case 'drop':
        if (i) w.drop(i);
        break;
      case 'land':
        w.land();
        break;
      case 'lose-confirm':
        if (i) i.loseNextConfirm = true;
        break;
      case 'reconnect':
        if (i) w.reconnect(i);
        break;
      case 'advance':
        m.advance(a.midApply, a.meanwhile);
        break;
      case 'retry':
        m.retry();
        break;
      case 'stale': {
        const r = i ? w.send(i, staleCommand(a.kind)) : null;
        if (r && (r.ok || r.code !== 'stale-epoch')) seen.push(`action ${n}: a stale ${a.kind} was not refused as stale`);
        break;
      }
      case 'status':
        if (i) w.send(i, { kind: 'status', digest: true });
        break;
    }
    check(`action ${n} (${a.k})`);
  }
  // A fair scheduler: everyone reconnects, consumes and works, and the migration goes on, until nothing moves.
  for (let round = 0; round < 5000; round++) {
    let moved = false;
    while (w.land()) moved = true;
    for (const i of w.instances.filter((x) => x.alive)) {
      if (!i.connected) (w.reconnect(i), (moved = true));
      while (w.deliver(i, 'primary') || w.deliver(i, 'replay') || w.process(i)) moved = true;
    }
    if (!m.done) moved = m.advance() || moved;
    check(`drain round ${round}`);
    if (!moved) break;
  }
  if (!m.done) seen.push(`the migration is stuck at step ${m.at}`);
  return { world: w, migration: m, plan: sc.plan, seen };
}

const server = (o: Outcome) => (o.plan.startsWith('rollback') ? o.world.source : o.world.copy!);
const dupes = (xs: string[]) => [...new Set(xs.filter((x, i) => xs.indexOf(x) !== i))];
const RUNS = 500;

describe('the service core under random interleavings (fast-check)', () => {
  it('applies every published message exactly once, in every instance and in the one left serving', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const o = run(sc);
        expect(o.seen.filter((s) => /stuck/.test(s))).toEqual([]);
        for (const i of o.world.instances) expect(dupes(i.history), `${i.name} applied twice`).toEqual([]);
        const expected = [...o.world.published].flatMap(([p, last]) => Array.from({ length: last }, (_, k) => `${p}:${k + 1}`));
        expect([...server(o).history].sort()).toEqual(expected.sort());
        expect(o.world.queues.get(PRIMARY)!.ready).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it("keeps each producer's order in the instance left serving", () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const last = new Map<string, number>();
        const late: string[] = [];
        for (const id of server(run(sc)).history) {
          const [p, seq] = id.split(':');
          if (Number(seq) < (last.get(p) ?? 0)) late.push(`${id} after ${p}:${last.get(p)}`);
          last.set(p, Math.max(Number(seq), last.get(p) ?? 0));
        }
        expect(late).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('never lets the copy apply beyond the source, nor beyond the fenced source at the catch-up', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        expect(run(sc).seen.filter((s) => /ahead of|past the fenced/.test(s))).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('hands off only at equal position and digest, with no position missing', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const o = run(sc);
        const { fenced, caughtUp } = o.migration;
        if (!fenced?.ok || !caughtUp?.ok) return;
        const src = { instanceId: 'src', ...fenced };
        const cp = { instanceId: 'copy', ...caughtUp };
        expect(handoffRefusal(src, cp)).toBeNull();
        expect(cp.digest).toBe(src.digest);
      }),
      { numRuns: RUNS },
    );
  });

  it('emits outputs only from the instance that owns the stream, each once unless flagged as a resend, none missing', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const o = run(sc);
        expect(o.seen.filter((s) => /both serve|while not serving|emitted outputs as/.test(s))).toEqual([]);
        expect(dupes(o.world.outputs.filter((x) => !x.resent).map((x) => x.id))).toEqual([]);
        const answered = new Set(o.world.outputs.map((x) => x.id.replace(/:0$/, '')));
        expect(server(o).history.filter((id) => !answered.has(id))).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('gives a copy at any position of the source exactly the source sequence up to there (order-sensitive chain)', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        expect(run(sc).seen.filter((s) => /chain differs/.test(s))).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });

  it('refuses stale commands and records no other violation', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        expect(run(sc).seen).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  });
});
