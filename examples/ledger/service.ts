/**
 * Entry point of the example ledger service. With MS2M_LEDGER_TRACE set, every instance appends one line
 * per applied message to that file: `[n, producer, seq, head, instance]`. The file is opened once with
 * O_APPEND, so a restored copy keeps appending to it (CRIU restores the descriptor); the oracle reads
 * the apply sequence of every instance that ever ran from it, independently of ms2m's own marks and digests.
 */
import { openSync, writeSync } from 'node:fs';
import { MigratableService } from '../../service';
import { busyWork } from '../footprint';
import { applyTransfer, initialLedger, ledgerTopology, ledgerView, type LedgerState, type Transfer } from './ledger';

const service = process.env.MS2M_SERVICE ?? 'ledger';
const amqpUrl = process.env.MS2M_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const workMs = Number(process.env.MS2M_WORK_MS ?? '0');
const ballastBytes = Number(process.env.MS2M_STATE_BYTES ?? '0');
const tracePath = process.env.MS2M_LEDGER_TRACE;
const trace = tracePath ? openSync(tracePath, 'a') : null;
const topology = ledgerTopology(service);

const svc = new MigratableService<LedgerState>({
  service,
  amqpUrl,
  input: { exchange: topology.exchange, queue: topology.queue, bindings: ['#'] },
  output: { exchange: topology.outputExchange },
  initialState: () => initialLedger(ballastBytes),
  apply(state, message, ctx) {
    // Unstamped transfers cannot be told apart on a replay; the service library refuses to migrate a service that gets them.
    const producer = message.stamp?.producer ?? 'unstamped';
    const seq = message.stamp?.seq ?? 0;
    const t = JSON.parse(message.body.toString()) as Transfer;
    if (workMs > 0) busyWork(workMs);
    const out = applyTransfer(state, t, producer, seq);
    if (trace !== null) writeSync(trace, `${JSON.stringify([out.n, producer, seq, out.head, svc.instanceId])}\n`);
    ctx.emit(`receipt.${t.from}`, out);
  },
  digestOf: ledgerView,
  describe: (state) => ({ ledger: ledgerView(state) }),
});

// Stop cleanly: a namespace's init (which this process is) ignores SIGTERM unless it handles it.
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void svc.stop().then(() => process.exit(0)));

svc.start().catch((err) => {
  console.error(`ledger service failed to start: ${(err as Error).message}`);
  process.exit(1);
});
