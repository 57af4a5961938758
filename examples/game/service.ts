/**
 * Entry point of the example game service. Configuration comes from the environment at start; a restored
 * copy keeps it (the environment is part of the checkpoint) and learns its new identity from its hostname.
 */
import { MigratableService } from '../../service';
import { busyWork } from '../footprint';
import { applyGameEvent, gameDigestView, gameTopology, initialGameState, scoreboard, type GameEvent, type GameState } from './game';

const service = process.env.MS2M_SERVICE ?? 'game';
const amqpUrl = process.env.MS2M_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const workMs = Number(process.env.MS2M_WORK_MS ?? '0');
const ballastBytes = Number(process.env.MS2M_STATE_BYTES ?? '0');
const topology = gameTopology(service);

const svc = new MigratableService<GameState>({
  service,
  amqpUrl,
  input: { exchange: topology.exchange, queue: topology.queue, bindings: ['#'] },
  output: { exchange: topology.outputExchange },
  initialState: () => initialGameState(ballastBytes),
  apply(state, message, ctx) {
    const event = JSON.parse(message.body.toString()) as GameEvent;
    if (workMs > 0) busyWork(workMs);
    const result = applyGameEvent(state, event, message.stamp?.producer);
    ctx.emit(`result.${event.player}`, result);
  },
  digestOf: gameDigestView,
  describe: (state) => ({ players: Object.keys(state.players).length, scoreboard: scoreboard(state) }),
});

// Stop cleanly: a namespace's init (which this process is) ignores SIGTERM unless it handles it.
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void svc.stop().then(() => process.exit(0)));

svc.start().catch((err) => {
  console.error(`game service failed to start: ${(err as Error).message}`);
  process.exit(1);
});
