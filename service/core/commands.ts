/**
 * What an instance does with each control command of the orchestrator. Every command but `status` carries
 * a migration id and an epoch: a newer epoch starts a migration, the same one must name the same
 * migration, and anything older is refused, so nothing stale steers a later instance.
 */
import { acceptFencing, type ControlCommand } from '../protocol';
import { takeOver } from './deliveries';
import { refusal, type Context, type CoreState, type Effect } from './state';

/**
 * The reply, once the effects are done: a status with the state digest, without it, or (`caught-up`) with
 * it only if the copy has stopped reading the log by then; or a refusal.
 */
export type Reply = { ok: true; digest: boolean | 'caught-up' } | { ok: false; code: string; error: string };

/**
 * Whether the status sent now carries the digest. Decided when the reply is built, not when the command
 * was: deliveries handled while its effects ran may have brought the copy to the fenced position, and a
 * reply that says it stands there must carry the digest to compare.
 */
export function withDigest(s: CoreState, reply: { digest: boolean | 'caught-up' }): boolean {
  return reply.digest === 'caught-up' ? s.replayQueue === null : reply.digest;
}

export interface Outcome {
  effects: Effect[];
  reply: Reply;
}

const ok = (digest: boolean | 'caught-up', effects: Effect[] = []): Outcome => ({ effects, reply: { ok: true, digest } });
const refuse = (s: CoreState, code: string, error: string): Outcome => ({ effects: [], reply: refusal(s, code, error) });

export function command(s: CoreState, cmd: ControlCommand, ctx: Context): Outcome {
  if (cmd.kind === 'status') return ok(cmd.digest ?? true);
  const verdict = acceptFencing({ epoch: s.epoch, migrationId: s.migrationId }, cmd);
  if (verdict === 'stale') {
    return refuse(s, 'stale-epoch', `command ${cmd.kind} for ${cmd.migrationId}@${cmd.epoch} is stale (now ${s.migrationId}@${s.epoch})`);
  }
  if (verdict === 'adopt') {
    s.epoch = cmd.epoch;
    s.migrationId = cmd.migrationId;
  }
  switch (cmd.kind) {
    case 'shadow': {
      if (s.role !== 'primary' || s.fenced) return refuse(s, 'wrong-role', 'only a serving primary is shadowed');
      if (s.applyLog === cmd.queue) return ok(false);
      s.applyLog = cmd.queue;
      return ok(false, [{ kind: 'log', line: `shadowed: writing the apply log to ${cmd.queue} from position ${s.applied + 1}` }]);
    }
    case 'replay': {
      if (s.role !== 'standby') return refuse(s, 'wrong-role', 'only a restored copy replays');
      if (s.replayQueue !== null) return ok(false);
      s.replayQueue = cmd.queue;
      return ok(false, [{ kind: 'consume-replay', queue: cmd.queue }]);
    }
    case 'fence': {
      if (s.role !== 'primary') return refuse(s, 'wrong-role', 'only the primary can be fenced');
      const effects: Effect[] = [];
      if (!s.fenced) {
        s.fenced = true;
        s.fencedAt = ctx.now;
        // What the primary queue delivered already is applied, not returned to it (a returned delivery can
        // land behind a later one of its producer that the copy took): then the count and marks are final.
        effects.push({ kind: 'stop-primary' });
      }
      // Every log entry and output is confirmed before the fence answers: the log is complete up to `applied`.
      effects.push({ kind: 'confirm-all' });
      return ok(true, effects);
    }
    case 'catch-up': {
      // A retry after the swap: the copy serves already.
      if (s.role === 'primary' && s.activatedAt) return ok(true);
      if (s.role !== 'standby') return refuse(s, 'wrong-role', 'only a restored copy catches up');
      s.upTo = cmd.upTo;
      const effects: Effect[] = [];
      if (s.applied >= s.upTo) {
        s.replayQueue = null;
        effects.push({ kind: 'stop-replay' });
      }
      // The digest is only worth comparing once the copy has stopped reading the log.
      return ok('caught-up', effects);
    }
    case 'activate': {
      if (s.role === 'primary') return ok(false);
      if (s.replayQueue !== null) return refuse(s, 'still-replaying', 'catch up before activation');
      s.activatedDigest = ctx.digest();
      s.role = 'primary';
      s.upTo = null;
      s.activatedAt = ctx.now;
      // The source was fenced alive and emitted every output up to its last position.
      s.owed.clear();
      return ok(false, [
        // Log entries still buffered lie past the fence (there are none unless the log was written twice).
        { kind: 'drop-buffered-replay' },
        { kind: 'consume-primary' },
        { kind: 'activated' },
        { kind: 'log', line: `activated: consuming ${s.inputQueue}` },
      ]);
    }
    case 'adopt': {
      if (s.role === 'primary') return ok(false);
      s.adopting = true;
      s.upTo = null;
      const effects: Effect[] = [{ kind: 'log', line: 'source lost: adopting its stream from its apply log' }];
      if (s.sealed) return ok(false, [...effects, ...takeOver(s, ctx)]);
      if (s.replayQueue === null) {
        s.replayQueue = cmd.queue;
        effects.push({ kind: 'consume-replay', queue: cmd.queue });
      }
      return ok(false, effects);
    }
    case 'unfence': {
      if (s.role !== 'primary') return refuse(s, 'wrong-role', 'only the primary can be unfenced');
      const effects: Effect[] = [];
      if (s.applyLog) effects.push({ kind: 'log', line: `no longer shadowed: stopped writing ${s.applyLog}` });
      s.applyLog = null;
      if (s.fenced) {
        s.fenced = false;
        s.fencedAt = null;
        effects.push({ kind: 'consume-primary' }, { kind: 'log', line: 'unfenced: consuming again' });
      }
      return ok(false, effects);
    }
  }
}
