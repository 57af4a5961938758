/**
 * Queue names of the protocol. Free of Node APIs so the workflow sandbox can use them too.
 */

/** Arguments every party must declare a control queue with (RabbitMQ rejects a mismatch). */
export const CONTROL_QUEUE_ARGS = { durable: false, autoDelete: false, arguments: { 'x-expires': 30 * 60_000 } };

export function controlQueueName(instanceId: string): string {
  return `ms2m.ctl.${instanceId}`;
}

export function replayQueueName(service: string, migrationId: string): string {
  return `ms2m.replay.${service}.${migrationId}`;
}
