/**
 * Broker activities: they shape RabbitMQ topology for a migration (the replay queue) and steer the
 * instances through their control queues. They run on the orchestrator's task queue and are the same for
 * every runtime. Every one is idempotent: the instances answer a repeated command of the same migration
 * with their current state.
 */
import { Context, ApplicationFailure } from '@temporalio/activity';
import type * as amqp from 'amqplib';
import { loadConfig } from '../lib/config';
import { failpoint } from '../lib/failpoints';
import { queueBindings, queueDepth } from '../lib/rabbit-admin';
import { ControlClient, ControlError } from '../service/control-client';
import { HEADER_END, controlQueueName, lagBetween, reached, type ControlCommand, type InstanceStatus } from '../service/protocol';
import type { BrokerActivities } from './types';

const REPLAY_QUEUE_TTL_MS = 30 * 60_000;
const POLL_MS = 25;
/** Unstamped messages this recent make a service unsafe to migrate. */
const UNSTAMPED_WINDOW_MS = 10 * 60_000;

let shared: Promise<ControlClient> | null = null;

async function control(): Promise<ControlClient> {
  if (shared) {
    const c = await shared.catch(() => null);
    if (c?.isOpen) return c;
  }
  shared = ControlClient.connect(loadConfig().amqpUrl, 'ms2m-orchestrator');
  return shared;
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
    if (err instanceof ControlError && err.code !== 'timeout' && err.code !== 'disconnected') {
      // The instance refused (stale epoch, wrong role): retrying the same command cannot help.
      throw ApplicationFailure.nonRetryable(err.message, 'ControlRefused');
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createBrokerActivities(): BrokerActivities {
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
            'NotMigratable',
          );
        }
        throw err;
      }
      if (st.unstamped > 0 && st.lastUnstampedAt !== null && Date.now() - st.lastUnstampedAt < UNSTAMPED_WINDOW_MS) {
        throw ApplicationFailure.nonRetryable(
          `service: ${service} received ${st.unstamped} message(s) without ids, the last ${Math.round((Date.now() - st.lastUnstampedAt) / 1000)} s ago; ` +
            'a copy could not tell them from ones it already applied. Publish with StampingProducer (headers x-ms2m-producer and x-ms2m-seq) ' +
            'or set each message\'s messageId to "<producer>:<seq>", then migrate',
          'NotMigratable',
        );
      }
      return st;
    },

    async prepareReplay({ primaryQueue, replayQueue, fencing }) {
      const cfg = loadConfig();
      const bindings = await queueBindings(cfg.amqpMgmtUrl, cfg.amqpUrl, primaryQueue);
      if (bindings.length === 0) {
        throw ApplicationFailure.nonRetryable(`queue ${primaryQueue} has no exchange bindings to copy to the replay queue`, 'NoBindings');
      }
      await withChannel(async (ch) => {
        await ch.assertQueue(replayQueue, { durable: true, arguments: { 'x-expires': REPLAY_QUEUE_TTL_MS } });
        for (const b of bindings) await ch.bindQueue(replayQueue, b.source, b.routing_key, b.arguments);
      });
      // The replay queue now receives everything the primary does; the marker shows when the source has
      // applied everything that reached the primary queue alone.
      return (await control()).cut(primaryQueue, fencing, 60_000);
    },

    async startReplay({ copy, source, replayQueue, fencing, timeoutMs }) {
      const src = await send(source, { kind: 'status', digest: false }, timeoutMs);
      return send(copy, { kind: 'replay', queue: replayQueue, bound: src.marks, ...fencing }, timeoutMs);
    },

    async replayUntil({ copy, source, fencing, threshold, windowMs, timeoutMs }) {
      const until = Date.now() + windowMs;
      for (;;) {
        const src = await send(source, { kind: 'status', digest: false }, timeoutMs);
        // The bound keeps the copy from running ahead of the source, so its state can equal the source's at the fence.
        const cp = await send(copy, { kind: 'bound', bound: src.marks, ...fencing }, timeoutMs);
        const lag = lagBetween(src.marks, cp.marks);
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
     * the source stops consuming and reports its final marks, the copy applies the replay queue up to
     * exactly those marks, the digests are compared, and only if they are equal does the copy take over.
     */
    async fenceAndSwap({ source, copy, fencing, fenced, timeoutMs, catchUpMs }) {
      const before = await send(copy, { kind: 'status', digest: false }, timeoutMs);
      const src = fenced ?? (await send(source, { kind: 'fence', ...fencing }, Math.max(timeoutMs, 30_000)));
      await failpoint('orchestrator/fenced');
      if (before.role === 'primary' && before.migrationId === fencing.migrationId) {
        // A retry after the swap happened: report the swap, never compare a state that has moved on since.
        return { swapped: true, source: src, copy: { ...before, digest: before.activatedDigest ?? '' }, activatedAt: before.activatedAt };
      }
      let cp: InstanceStatus;
      const until = Date.now() + catchUpMs;
      for (;;) {
        cp = await send(copy, { kind: 'catch-up', target: src.marks, ...fencing }, timeoutMs);
        if (cp.consuming !== 'replay' && reached(cp.marks, src.marks)) break;
        const lag = lagBetween(src.marks, cp.marks);
        if (Date.now() > until) {
          // The bound on downtime: the copy is not done, so the source takes its stream back.
          throw ApplicationFailure.nonRetryable(`${copy} was still ${lag} messages behind after ${catchUpMs} ms of catch-up (timeouts.catchUpMs)`, 'CatchUpTimeout');
        }
        heartbeat({ lag });
        await sleep(POLL_MS / 5);
      }
      if (cp.digest !== src.digest) return { swapped: false, source: src, copy: cp, activatedAt: null };
      const active = await send(copy, { kind: 'activate', ...fencing }, timeoutMs);
      return { swapped: true, source: src, copy: cp, activatedAt: active.activatedAt };
    },

    async sealReplay({ primaryQueue, replayQueue, fencing }) {
      const cfg = loadConfig();
      const bindings = await queueBindings(cfg.amqpMgmtUrl, cfg.amqpUrl, primaryQueue);
      await withChannel(async (ch) => {
        // Unbound, the replay queue holds a finite history; the end marker follows everything routed to it.
        for (const b of bindings) await ch.unbindQueue(replayQueue, b.source, b.routing_key, b.arguments);
        ch.sendToQueue(replayQueue, Buffer.from(JSON.stringify(fencing)), { persistent: true, headers: { [HEADER_END]: fencing.migrationId } });
      });
    },

    async adopt({ copy, replayQueue, fencing, timeoutMs, catchUpMs }) {
      const until = Date.now() + catchUpMs;
      let st = await send(copy, { kind: 'adopt', queue: replayQueue, ...fencing }, timeoutMs);
      while (st.role !== 'primary') {
        if (Date.now() > until) {
          throw ApplicationFailure.nonRetryable(`${copy} did not reach the end of ${replayQueue} within ${catchUpMs} ms (timeouts.catchUpMs)`, 'CatchUpTimeout');
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

    async deleteQueue({ queue }) {
      await withChannel((ch) => ch.deleteQueue(queue).then(() => undefined));
    },
  };
}
