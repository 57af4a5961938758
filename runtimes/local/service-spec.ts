/**
 * What a service process gets from the node agent (its environment), and the checks a spec must pass
 * before anything is spawned: a program that is not there or cannot run would otherwise show up only as
 * a process that died at once, with the reason buried in its log.
 */
import { accessSync, constants, statSync, type Stats } from 'node:fs';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import type { LocalSpec } from '../spec';
import { FAILURE } from '../../lib/contracts';
import { loadConfig } from '../../lib/config';

/**
 * The environment a service process gets: its spec's, plus what makes a Node.js process checkpointable,
 * and the broker ms2m uses (MS2M_AMQP_URL, unless the spec names another): the broker's credentials come
 * from the agent's own configuration, so they are never in a spec, which a workflow's history keeps.
 */
export function serviceEnv(spec: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    LANG: process.env.LANG ?? 'C.UTF-8',
    MS2M_AMQP_URL: loadConfig().amqpUrl,
    ...spec,
    // CRIU cannot dump io_uring instances; libuv would otherwise use one for file I/O.
    UV_USE_IO_URING: '0',
  };
}

const EXAMPLE = '["node", "dist/examples/game/service.js"]';

function statOf(p: string): Stats | null {
  try {
    return statSync(p);
  } catch {
    return null;
  }
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const invalid = (message: string) => ApplicationFailure.nonRetryable(message, FAILURE.InvalidSpec);

/**
 * Refuses (InvalidSpec) a spec whose program or working directory is not usable on this node. A bare
 * program name is looked up the way the service's `sh -c 'exec "$@"'` will: in the PATH the service gets,
 * relative entries against its working directory; a name with a slash is resolved against that directory.
 */
export function checkSpec(spec: LocalSpec, node: string, agentCwd = process.cwd()): void {
  const cwd = spec.cwd === undefined ? agentCwd : path.resolve(agentCwd, spec.cwd);
  if (spec.cwd !== undefined && !statOf(cwd)?.isDirectory()) {
    throw invalid(`spec.cwd: "${spec.cwd}" is not a directory on ${node}; give an existing directory, or leave spec.cwd out to start in the node agent's (${agentCwd})`);
  }
  const program = spec.command[0];
  const where = spec.cwd === undefined ? `the node agent's directory ${agentCwd}` : `spec.cwd ${cwd}`;
  if (program.includes('/')) {
    const full = path.resolve(cwd, program);
    const st = statOf(full);
    if (!st) throw invalid(`spec.command[0]: "${program}" does not exist on ${node} (resolved against ${where} to ${full}); give the path of the program, e.g. ${EXAMPLE}`);
    if (st.isDirectory()) throw invalid(`spec.command[0]: "${program}" is a directory on ${node} (${full}); give the program to run, e.g. ${EXAMPLE}`);
    if (!executable(full)) {
      throw invalid(
        `spec.command[0]: "${program}" is not executable on ${node} (${full} has mode ${(st.mode & 0o777).toString(8)}); ` +
          `make it executable (chmod +x ${full}) or run it through its interpreter, e.g. ["sh", "${program}"] or ["node", "${program}"]`,
      );
    }
    return;
  }
  const searchPath = serviceEnv(spec.env).PATH ?? '';
  const found = searchPath
    .split(':')
    .map((dir) => path.resolve(cwd, dir || '.'))
    .some((dir) => {
      const candidate = path.join(dir, program);
      return statOf(candidate)?.isFile() === true && executable(candidate);
    });
  if (!found) {
    throw invalid(`spec.command[0]: "${program}" is not an executable on ${node} (looked in PATH=${searchPath}); give the path of the program, e.g. ${EXAMPLE}`);
  }
}
