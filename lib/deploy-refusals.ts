/**
 * The texts of a deploy refused after its instance started: it exited, it never answered, or it consumes
 * another queue than the spec says. Each names the field to fix and carries what the node knows (exit
 * status, the end of the log), so the cause is in the refusal rather than only in a log on the node.
 * Imported by the workflow sandbox: no Node APIs.
 */
import type { InstanceHealth } from '../runtimes/types';

function howItEnded(h: InstanceHealth): string {
  if (!h.exit) return `exited on ${h.node} (its exit status is unknown: ${h.exitUnknown ?? 'its node agent did not see it end'})`;
  const after = `${Math.max(0, h.exit.at - h.startedAt)} ms after it started`;
  if (h.exit.signal) return `was killed by ${h.exit.signal} on ${h.node} ${after}`;
  return `exited with code ${h.exit.code} on ${h.node} ${after}`;
}

function logBlock(h: Pick<InstanceHealth, 'logs' | 'logTail'>): string {
  if (!h.logTail.length) return `Its log ${h.logs} is empty.`;
  return `The last ${h.logTail.length} line(s) of its log ${h.logs}:\n${h.logTail.map((l) => `  | ${l}`).join('\n')}`;
}

export function instanceExitedMessage(h: InstanceHealth): string {
  return (
    `spec.command: ${h.instanceId} ${howItEnded(h)}, ` +
    `before it answered ms2m control commands; fix the command, spec.env or spec.cwd so that the service starts and keeps running. ${logBlock(h)}`
  );
}

export function notReadyMessage(h: InstanceHealth, readyMs: number): string {
  return (
    `spec.command: ${h.instanceId} runs on ${h.node} but did not answer ms2m control commands within ${readyMs} ms (readyMs); ` +
    'a deployed service must run the MigratableService loop from ms2m/service, connected to RabbitMQ ' +
    `(raise readyMs if it only starts slowly). It was stopped. ${logBlock(h)}`
  );
}

export function queueMismatchMessage(consumed: string, specified: string): string {
  return `spec.primaryQueue: the instance consumes "${consumed}", not "${specified}"; set spec.primaryQueue to "${consumed}"`;
}
