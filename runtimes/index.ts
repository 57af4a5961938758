/**
 * The runtime registry: which runtime this process serves, from MS2M_RUNTIME (default `local`). The one
 * place that knows the runtimes' folders; everything else asks it, and speaks the port (./types).
 */
import { RUNTIMES, type RuntimeName } from './runtime-names';
import type { Runtime } from './types';

export function runtimeName(value = process.env.MS2M_RUNTIME): RuntimeName {
  const name = value === undefined || value === '' ? 'local' : value;
  if (!(RUNTIMES as readonly string[]).includes(name)) {
    throw new Error(`MS2M_RUNTIME: "${name}" is not a runtime; use one of ${RUNTIMES.join(', ')} (or leave it unset for local)`);
  }
  return name as RuntimeName;
}

/** Loaded on demand, so a process never loads the code of a runtime it does not serve. */
export function loadRuntime(name: RuntimeName = runtimeName()): Runtime {
  switch (name) {
    case 'local':
      return (require('./local') as typeof import('./local')).localRuntime;
    case 'kubernetes':
      throw new Error('MS2M_RUNTIME=kubernetes: this version of ms2m has no kubernetes runtime yet; use local');
  }
}
