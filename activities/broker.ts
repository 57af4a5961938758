/**
 * Broker activities: they shape RabbitMQ topology for a migration (the replay queue, which the source
 * fills with its apply log) and steer the instances through their control queues. They are the same for
 * every runtime; the orchestrator runs them, and each node agent runs the handoff's (replay, fence) for
 * the copies on its node. Every one is idempotent: the instances answer a repeated command of the same migration
 * with their current state.
 */
import { Context, ApplicationFailure } from '@temporalio/activity';
import type * as amqp from 'amqplib';
import { loadConfig } from '../lib/config';
import { setTimeout as sleep } from 'node:timers/promises';
import { failpoint } from '../lib/failpoints';
import { queueDepth } from '../lib/rabbit-admin';
import { metrics } from '../lib/metrics';
import { log } from '../lib/log';
import { ControlClient, ControlError } from '../service/control-client';
import { HEADER_END, controlQueueName, handoffRefusal, type ControlCommand, type InstanceStatus } from '../service/protocol';
import type { BrokerActivities } from './types';
import { FAILURE } from '../lib/contracts';

const REPLAY_QUEUE_TTL_MS = 30 * 60_000;
const POLL_MS = 25;
/** How long one catch-up command may wait in the copy for the fenced position before it answers. */
const CATCH_UP_WAIT_MS = 1000;
/** Unstamped messages this recent make a service unsafe to migrate. */
const UNSTAMPED_WINDOW_MS = 10 * 60_000;

/** Control errors that say nothing about the command itself: the same command may well succeed later. */
const RETRYABLE_CODES = new Set(['timeout', 'disconnected', 'unflushed']);

let shared: Promise<ControlClient> | null = null;

async function control(): Promise<ControlClient> {
  if (shared) {
    const c = await shared.catch((err: Error) => {
      log('warn', `connecting to the broker failed; connecting again: ${err.message}`);
      return null;
    });
    if (c?.isOpen) return c;
    if (c) {
      metrics.brokerReconnects.inc();
      log('warn', 'the broker connection was lost; connecting again');
    }
  }
  shared = ControlClient.connect(loadConfig().amqpUrl, 'ms2m-orchestrator');
  return shared;
}

/**
 * Opens the worker's broker connection ahead of its first activity, so that connecting is not paid
 * inside a migration (a node agent's first replay, say). A failure here is retried by that activity.
 */
export function warmBrokerConnection(): void {
  void control().catch(() => undefined);
}

/** Topology changes get a channel of their own: a broker error closes the channel it happened on. */
async function withChannel<T>(fn: (ch: amqp.Channel) => Promise<T>): Promise<T> {
  const ch = await (await control()).openChannel();
  ch.on('error', () => undefined);
  try {
    return await fn(ch);
  } finally {
    await ch.close().catch(() => undefined);
  }
}

async function send(instanceId: string, cmd: ControlCommand, timeoutMs = 10_000): Promise<InstanceStatus> {
  // A reply can legitimately take longer than the heartbeat timeout (an instance still reconnecting).
  const beat = setInterval(heartbeat, 2000);
  try {
    return await (await control()).command(instanceId, cmd, timeoutMs);
  } catch (err) {
    if (err instanceof ControlError && !RETRYABLE_CODES.has(err.code)) {
      // The instance refused (stale epoch, wrong role): retrying the same command cannot help.
      throw ApplicationFailure.nonRetryable(err.message, FAILURE.ControlRefused);
    }
    throw err;
  } finally {
    clearInterval(beat);
  }
}

/** Local activities have no heartbeats; they run briefly inside the workflow worker. */
function heartbeat(details?: unknown): void {
  const ctx = Context.current();
  if (!ctx.info.isLocal) ctx.heartbeat(details);
}

/** `scope` names the worker in failpoints: "orchestrator", or the node whose agent runs the handoff. */
export function createBrokerActivities(scope = 'orchestrator'): BrokerActivities {
  return {
    async instanceStatus({ instanceId, timeoutMs }) {
      return send(instanceId, { kind: 'status', digest: true }, timeoutMs ?? 10_000);
    },

    async probeService({ service, instanceId, timeoutMs }) {
      let st: InstanceStatus;
      try {
        st = await (await control()).command(instanceId, { kind: 'status', digest: false }, timeoutMs);
      } catch (err) {
        if (err instanceof ControlError && err.code === 'timeout') {
          throw ApplicationFailure.nonRetryable(
            `service: ${service} (instance ${instanceId}) does not answer ms2m control commands on ${controlQueueName(instanceId)} within ${timeoutMs} ms; ` +
              'a migratable service must run the MigratableService loop from ms2m/service (or raise timeouts.controlReplyMs if it is only slow)',
            FAILURE.NotMigratable,
          );
        }
        throw err;
      }
      if (st.unstamped > 0 && st.lastUnstampedAt !== null && Date.now() - st.lastUnstampedAt < UNSTAMPED_WINDOW_MS) {
        throw ApplicationFailure.nonRetryable(
          `service: ${service} received ${st.unstamped} message(s) without ids, the last ${Math.round((Date.now() - st.lastUnstampedAt) / 1000)} s ago; ` +
            'a copy could not tell them from ones it already applied. Publish with StampingProducer (headers x-ms2m-producer and x-ms2m-seq) ' +
            'or set each message\'s messageId to "<producer>:<seq>", then migrate',
          FAILURE.NotMigratable,
        );
      }
      return st;
    },

    async prepareReplay({ source, replayQueue, fencing, timeoutMs }) {
      await withChannel(async (ch) => {
        await ch.assertQueue(replayQueue, { durable: true, arguments: { 'x-expires': REPLAY_QUEUE_TTL_MS } });
      });
      // From the next message it applies on, the source writes it to the replay queue; the checkpoint comes after.
      try {
        return await send(source, { kind: 'shadow', queue: replayQueue, ...fencing }, timeoutMs);
      } catch (err) {
        if (err instanceof ControlError && err.code === 'timeout') {
          throw ApplicationFailure.nonRetryable(
            `the source ${source} did not confirm within ${timeoutMs} ms (timeouts.controlReplyMs) that it writes its apply log; nothing was checkpointed`,
            FAILURE.PrepareTimeout,
          );
        }
        throw err;
      }
    },

    async startReplay({ copy, replayQueue, fencing, timeoutMs }) {
      return send(copy, { kind: 'replay', queue: replayQueue, ...fencing }, timeoutMs);
    },

    async replayUntil({ copy, source, threshold, windowMs, timeoutMs }) {
      const until = Date.now() + windowMs;
      for (;;) {
        const src = await send(source, { kind: 'status', digest: false }, timeoutMs);
        const cp = await send(copy, { kind: 'status', digest: false }, timeoutMs);
        // Positions in one sequence: what the source applied and the copy has not yet.
        const lag = Math.max(0, src.applied - cp.applied);
        heartbeat({ lag });
        if (lag <= threshold || Date.now() >= until) {
          return { lag, replayed: cp.applied, sourceMarks: src.marks, copyMarks: cp.marks, at: Date.now() };
        }
        await sleep(POLL_MS);
      }
    },

    async fenceSource({ source, fencing }) {
      return send(source, { kind: 'fence', ...fencing }, 30_000);
    },

    /**
     * The fence and the swap in one activity, so that the downtime window holds no Temporal round trips:
     * the source stops consuming and reports its final position, marks and digest; the copy applies the
     * apply log up to exactly that position; only if it stands at the same position with the same digest
     * and no position missing does it take over.
     */
    async fenceAndSwap({ source, copy, fencing, fenced, timeoutMs, catchUpMs }) {
      const before = await send(copy, { kind: 'status', digest: false }, timeoutMs);
      const src = fenced ?? (await send(source, { kind: 'fence', ...fencing }, Math.max(timeoutMs, 30_000)));
      await failpoint(`${scope}/fenced`);
      if (before.role === 'primary' && before.migrationId === fencing.migrationId) {
        // A retry after the swap happened: report the swap, never compare a state that has moved on since.
        return { swapped: true, source: src, copy: { ...before, digest: before.activatedDigest ?? '' }, activatedAt: before.activatedAt, refusal: null };
      }
      let cp: InstanceStatus;
      const until = Date.now() + catchUpMs;
      const waitMs = Math.min(CATCH_UP_WAIT_MS, catchUpMs);
      const activateIf = { instanceId: src.instanceId, applied: src.applied, digest: src.digest };
      for (;;) {
        // The copy answers when it stands at the fenced position, and takes over in the same reply if exact.
        cp = await send(copy, { kind: 'catch-up', upTo: src.applied, waitMs, activateIf, ...fencing }, timeoutMs + waitMs);
        if (cp.role === 'primary' && cp.migrationId === fencing.migrationId) {
          return { swapped: true, source: src, copy: { ...cp, digest: cp.activatedDigest ?? '' }, activatedAt: cp.activatedAt, refusal: null };
        }
        if (cp.consuming !== 'replay' && cp.applied >= src.applied) break;
        const lag = Math.max(0, src.applied - cp.applied);
        if (Date.now() > until) {
          // The bound on downtime: the copy is not done, so the source takes its stream back.
          throw ApplicationFailure.nonRetryable(`${copy} was still ${lag} messages behind after ${catchUpMs} ms of catch-up (timeouts.catchUpMs)`, FAILURE.CatchUpTimeout);
        }
        heartbeat({ lag });
        await sleep(POLL_MS / 5);
      }
      const refusal = handoffRefusal(src, cp);
      if (refusal) return { swapped: false, source: src, copy: cp, activatedAt: null, refusal };
      // Exact, but still standby: an instance of a library from before activateIf.
      const active = await send(copy, { kind: 'activate', ...fencing }, timeoutMs);
      return { swapped: true, source: src, copy: cp, activatedAt: active.activatedAt, refusal: null };
    },

    async sealReplay({ replayQueue, fencing }) {
      await withChannel(async (ch) => {
        // The source is gone, so nothing is written after this: the marker ends the apply log.
        ch.sendToQueue(replayQueue, Buffer.from(JSON.stringify(fencing)), { persistent: true, headers: { [HEADER_END]: fencing.migrationId } });
      });
    },

    async adopt({ copy, replayQueue, fencing, timeoutMs, catchUpMs }) {
      const until = Date.now() + catchUpMs;
      let st = await send(copy, { kind: 'adopt', queue: replayQueue, ...fencing }, timeoutMs);
      while (st.role !== 'primary') {
        if (Date.now() > until) {
          throw ApplicationFailure.nonRetryable(`${copy} did not reach the end of ${replayQueue} within ${catchUpMs} ms (timeouts.catchUpMs)`, FAILURE.CatchUpTimeout);
        }
        heartbeat({ applied: st.applied });
        await sleep(POLL_MS);
        st = await send(copy, { kind: 'status', digest: false }, timeoutMs);
      }
      return st;
    },

    async activate({ copy, fencing }) {
      return send(copy, { kind: 'activate', ...fencing }, 30_000);
    },

    async unfence({ source, fencing }) {
      return send(source, { kind: 'unfence', ...fencing });
    },

    async queueDepths({ queues }) {
      const cfg = loadConfig();
      const depths = await Promise.all(queues.map((q) => queueDepth(cfg.amqpMgmtUrl, cfg.amqpUrl, q)));
      return Object.fromEntries(queues.map((q, i) => [q, depths[i]]));
    },

    async queueConsumers({ queue }) {
      return withChannel(async (ch) => (await ch.checkQueue(queue)).consumerCount);
    },

    async deleteQueue({ queue }) {
      await withChannel((ch) => ch.deleteQueue(queue).then(() => undefined));
    },
  };
}

