import { describe, expect, it } from 'vitest';
import type { InstanceHealth } from '../../runtimes/types';
import { instanceExitedMessage, notReadyMessage, queueMismatchMessage } from '../../lib/deploy-refusals';

const health = (h: Partial<InstanceHealth>): InstanceHealth => ({
  instanceId: 'game-1a2b3c4d',
  node: 'node-a',
  startedAt: 1_000,
  alive: false,
  exit: null,
  logs: '/var/ms2m/logs/game-1a2b3c4d.log',
  logTail: [],
  ...h,
});

describe('deploy refusal messages', () => {
  it('an instance that exited: how, when, and the end of its log', () => {
    expect(instanceExitedMessage(health({ exit: { code: 3, signal: null, at: 1_048 }, logTail: ['Error: connect ECONNREFUSED 127.0.0.1:5673', '    at TCPConnectWrap'] }))).toBe(
      'spec.command: game-1a2b3c4d exited with code 3 on node-a 48 ms after it started, before it answered ms2m control commands; ' +
        'fix the command, spec.env or spec.cwd so that the service starts and keeps running. ' +
        'The last 2 line(s) of its log /var/ms2m/logs/game-1a2b3c4d.log:\n  | Error: connect ECONNREFUSED 127.0.0.1:5673\n  |     at TCPConnectWrap',
    );
  });
  it('killed by a signal, or an exit nobody saw', () => {
    expect(instanceExitedMessage(health({ exit: { code: null, signal: 'SIGKILL', at: 3_000 } }))).toMatch(
      /^spec.command: game-1a2b3c4d was killed by SIGKILL on node-a 2000 ms after it started, .* Its log \/var\/ms2m\/logs\/game-1a2b3c4d.log is empty\.$/,
    );
    expect(instanceExitedMessage(health({ exitUnknown: 'the node agent of node-a restarted since it started the instance' }))).toMatch(
      /^spec.command: game-1a2b3c4d exited on node-a \(its exit status is unknown: the node agent of node-a restarted since it started the instance\), before it answered/,
    );
  });
  it('an instance that runs but never answers', () => {
    expect(notReadyMessage(health({ alive: true, logTail: ['listening on :8080'] }), 20_000)).toBe(
      'spec.command: game-1a2b3c4d runs on node-a but did not answer ms2m control commands within 20000 ms (readyMs); ' +
        'a deployed service must run the MigratableService loop from ms2m/service, connected to RabbitMQ (raise readyMs if it only starts slowly). ' +
        'It was stopped. The last 1 line(s) of its log /var/ms2m/logs/game-1a2b3c4d.log:\n  | listening on :8080',
    );
  });
  it('a primaryQueue the instance does not consume', () => {
    expect(queueMismatchMessage('game.primary', 'other.primary')).toBe('spec.primaryQueue: the instance consumes "game.primary", not "other.primary"; set spec.primaryQueue to "game.primary"');
  });
});
