/**
 * Where the parts of the stack are. Values come from the environment; `infra/stack.sh` writes the ones it
 * set up to `$MS2M_CACHE/stack.env`, which fills in whatever the environment leaves out.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const cacheDir = (): string => process.env.MS2M_CACHE ?? path.join(os.homedir(), '.cache', 'ms2m');

let stackEnv: Record<string, string> | undefined;
function fromStackFile(key: string): string | undefined {
  if (!stackEnv) {
    stackEnv = {};
    const file = path.join(cacheDir(), 'stack.env');
    if (existsSync(file)) {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
        if (m) stackEnv[m[1]] = m[2];
      }
    }
  }
  return stackEnv[key];
}

function setting(key: string, fallback: string): string {
  return process.env[key] ?? fromStackFile(key) ?? fallback;
}

/** The checkout this code runs from, whether compiled (dist/lib) or from sources (lib). */
function projectRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

export interface Config {
  temporalAddress: string;
  temporalNamespace: string;
  temporalUi: string;
  amqpUrl: string;
  amqpMgmtUrl: string;
  criu: string;
  /** Root of the local runtime's state: cluster records and each node's data directory. */
  home: string;
  /** The orchestrator's task queue; node queues are derived from it. */
  taskQueue: string;
  projectRoot: string;
  /** Where Prometheus finds the workers (file_sd: one JSON file per process); unset when no Prometheus runs. */
  metricsTargets: string;
  /** The Prometheus that `npm start -- --observe` (infra/ensure-prometheus.sh) started; unset otherwise. */
  prometheusUrl: string;
}

export function loadConfig(): Config {
  return {
    temporalAddress: setting('MS2M_TEMPORAL_ADDRESS', '127.0.0.1:7233'),
    temporalNamespace: setting('MS2M_TEMPORAL_NAMESPACE', 'default'),
    temporalUi: setting('MS2M_TEMPORAL_UI', 'http://127.0.0.1:8233'),
    amqpUrl: setting('MS2M_AMQP_URL', 'amqp://guest:guest@127.0.0.1:5672'),
    amqpMgmtUrl: setting('MS2M_AMQP_MGMT_URL', 'http://guest:guest@127.0.0.1:15672'),
    criu: setting('MS2M_CRIU', 'criu'),
    home: setting('MS2M_HOME', path.join(cacheDir(), 'home')),
    taskQueue: setting('MS2M_TASK_QUEUE', 'ms2m'),
    projectRoot: projectRoot(),
    metricsTargets: setting('MS2M_METRICS_TARGETS', ''),
    prometheusUrl: setting('MS2M_PROMETHEUS_URL', ''),
  };
}
