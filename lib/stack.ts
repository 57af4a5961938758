/**
 * Brings up the local dev stack through infra/stack.sh (idempotent; progress on stderr) and exports what
 * it reports into this process's environment, so workers started from here find Temporal, RabbitMQ and CRIU.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { loadConfig } from './config';

/** `observe`: also the Prometheus that scrapes the workers (stack.sh --observe). */
export async function ensureStack(opts: { quiet?: boolean; observe?: boolean } = {}): Promise<Record<string, string>> {
  const script = path.join(loadConfig().projectRoot, 'infra', 'stack.sh');
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [script, ...(opts.observe ? ['--observe'] : [])], { stdio: ['ignore', 'pipe', opts.quiet ? 'pipe' : 'inherit'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`the dev stack could not be brought up (infra/stack.sh exited ${code})${stderr ? `:\n${stderr}` : '; see the messages above'}`)),
    );
  });
  const env: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const m = /^(MS2M_[A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  for (const [k, v] of Object.entries(env)) process.env[k] ??= v;
  return env;
}
