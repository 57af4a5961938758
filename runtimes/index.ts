/**
 * The runtime registry: which runtime this process serves, from MS2M_RUNTIME (default `local`). The one
 * place that knows the runtimes' folders; everything else asks it, and speaks the port (./types).
 */
import { kubernetesRuntime } from './kubernetes';
import { localRuntime } from './local';
import { RUNTIMES, type RuntimeName } from './runtime-names';
import type { Runtime } from './types';

export function runtimeName(value = process.env.MS2M_RUNTIME): RuntimeName {
  const name = value === undefined || value === '' ? 'local' : value;
  if (!(RUNTIMES as readonly string[]).includes(name)) {
    throw new Error(`MS2M_RUNTIME: "${name}" is not a runtime; use one of ${RUNTIMES.join(', ')} (or leave it unset for local)`);
  }
  return name as RuntimeName;
}

/** The runtime this process serves; a runtime's setup may be asynchronous (a cluster client to build). */
export async function loadRuntime(name: RuntimeName = runtimeName()): Promise<Runtime> {
  switch (name) {
    case 'local':
      return localRuntime;
    case 'kubernetes':
      return kubernetesRuntime;
  }
}
