import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { exitOf, tailLines } from '../../runtimes/local/instance-exit';
import { checkSpec } from '../../runtimes/local/service-spec';
import type { LocalSpec as ServiceSpec } from '../../runtimes/types';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ms2m-spec-'));
mkdirSync(path.join(dir, 'bin'));
writeFileSync(path.join(dir, 'bin', 'serve'), '#!/bin/sh\n');
chmodSync(path.join(dir, 'bin', 'serve'), 0o755);
writeFileSync(path.join(dir, 'bin', 'notes'), 'text\n');
chmodSync(path.join(dir, 'bin', 'notes'), 0o644);

const spec = (command: string[], more: Partial<ServiceSpec> = {}): ServiceSpec => ({ runtime: 'local', command, env: {}, primaryQueue: 'game.primary', ...more });

function refusal(s: ServiceSpec, agentCwd = dir): string {
  try {
    checkSpec(s, 'node-a', agentCwd);
  } catch (err) {
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe('InvalidSpec');
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    return (err as ApplicationFailure).message;
  }
  throw new Error('expected the spec to be refused');
}

describe('checkSpec', () => {
  it('accepts programs found the way the service will find them', () => {
    expect(() => checkSpec(spec(['sh', '-c', 'true']), 'node-a', dir)).not.toThrow();
    expect(() => checkSpec(spec(['serve'], { env: { PATH: 'bin' } }), 'node-a', dir)).not.toThrow();
    expect(() => checkSpec(spec(['./bin/serve']), 'node-a', dir)).not.toThrow();
    expect(() => checkSpec(spec(['./serve'], { cwd: 'bin' }), 'node-a', dir)).not.toThrow();
  });
  it('a bare name not in the PATH the service gets', () => {
    expect(refusal(spec(['serve'], { env: { PATH: '/usr/bin:/bin' } }))).toBe(
      'spec.command[0]: "serve" is not an executable on node-a (looked in PATH=/usr/bin:/bin); give the path of the program, e.g. ["node", "dist/examples/game/service.js"]',
    );
    expect(refusal(spec(['notes'], { env: { PATH: 'bin' } }))).toMatch(/^spec.command\[0\]: "notes" is not an executable on node-a \(looked in PATH=bin\)/);
  });
  it('a path that is missing, a directory, or not executable', () => {
    expect(refusal(spec(['./run.sh'], { cwd: 'bin' }))).toBe(
      `spec.command[0]: "./run.sh" does not exist on node-a (resolved against spec.cwd ${path.join(dir, 'bin')} to ${path.join(dir, 'bin', 'run.sh')}); give the path of the program, e.g. ["node", "dist/examples/game/service.js"]`,
    );
    expect(refusal(spec(['bin/missing']))).toMatch(`(resolved against the node agent's directory ${dir} to ${path.join(dir, 'bin', 'missing')})`);
    expect(refusal(spec(['./bin']))).toBe(`spec.command[0]: "./bin" is a directory on node-a (${path.join(dir, 'bin')}); give the program to run, e.g. ["node", "dist/examples/game/service.js"]`);
    expect(refusal(spec(['bin/notes']))).toBe(
      `spec.command[0]: "bin/notes" is not executable on node-a (${path.join(dir, 'bin', 'notes')} has mode 644); make it executable (chmod +x ${path.join(dir, 'bin', 'notes')}) or run it through its interpreter, e.g. ["sh", "bin/notes"] or ["node", "bin/notes"]`,
    );
  });
  it('a working directory that is not there', () => {
    expect(refusal(spec(['sh'], { cwd: '/no/such/dir' }))).toBe(
      `spec.cwd: "/no/such/dir" is not a directory on node-a; give an existing directory, or leave spec.cwd out to start in the node agent's (${dir})`,
    );
    expect(refusal(spec(['sh'], { cwd: 'bin/serve' }))).toMatch(/^spec.cwd: "bin\/serve" is not a directory on node-a/);
  });
});

describe('instance exits', () => {
  it('reads exit codes and signals as they are, and SIGKILL from what unshare prints when it cannot pass it on', () => {
    expect(exitOf(3, null, ['boom'])).toMatchObject({ code: 3, signal: null });
    expect(exitOf(null, 'SIGSEGV', [])).toMatchObject({ code: null, signal: 'SIGSEGV' });
    expect(exitOf(1, null, ['unshare: sigprocmask unblock failed: Invalid argument'])).toMatchObject({ code: null, signal: 'SIGKILL' });
    expect(exitOf(1, null, ['Error: unshare: something the service printed'])).toMatchObject({ code: 1, signal: null });
  });
  it('tails a log', () => {
    const log = path.join(dir, 'x.log');
    writeFileSync(log, Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join('\n') + '\n\n');
    expect(tailLines(log, 3)).toEqual(['line 28', 'line 29', 'line 30']);
    writeFileSync(log, 'x'.repeat(40_000) + '\nlast\n');
    expect(tailLines(log, 20)).toEqual(['last']);
    expect(tailLines(path.join(dir, 'missing.log'), 5)).toEqual([]);
  });
});
