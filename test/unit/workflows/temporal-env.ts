/**
 * The Temporal side of the workflow tests: a dev server of their own, started by @temporalio/testing from
 * the cached `temporal` CLI (no download), the workflow bundle built from the sources with the project's
 * payload converter, and workers for the orchestrator's queue and each node's queue.
 *
 * Why a dev server and not the time-skipping test server: the dev server is the very binary the project
 * already installs and runs (infra/ensure-temporal.sh), it starts in a fraction of a second on a free port
 * of its own, and it supports everything the workflows use (custom search attributes, user metadata,
 * local activities, child workflows). The tests keep real waits short through the migration input's
 * `timeouts` and `replay` fields instead of skipping time.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import ts from 'typescript';
import { cacheDir } from '../../../lib/config';
import { nodeTaskQueue } from '../../../lib/migration';
import { SA_PHASE, SA_SERVICE, SA_SOURCE_NODE, SA_STRATEGY, SA_TARGET_NODE } from '../../../lib/search-attributes';
import type { FakeCluster } from './fake-runtime';

export const ROOT = path.resolve(__dirname, '../../..');
export const WORKFLOWS_PATH = path.join(ROOT, 'workflows', 'index.ts');
const CONVERTER_SOURCE = path.join(ROOT, 'lib', 'payload-converter.ts');

/**
 * The `temporal` CLI the stack uses, found the way infra/ensure-temporal.sh finds it: MS2M_TEMPORAL_BIN
 * (from the environment or the stack file infra/stack.sh writes), then PATH, then the cache.
 */
export function temporalBinary(): string {
  const works = (p: string | undefined): p is string => {
    if (!p || !existsSync(p)) return false;
    try {
      execFileSync(p, ['--version'], { stdio: 'ignore', timeout: 10_000 });
      return true;
    } catch {
      return false;
    }
  };
  const fromStack = (): string | undefined => {
    const file = path.join(cacheDir(), 'stack.env');
    if (!existsSync(file)) return undefined;
    return /^MS2M_TEMPORAL_BIN=(.*)$/m.exec(readFileSync(file, 'utf8'))?.[1]?.trim();
  };
  const onPath = (): string | undefined => {
    for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
      const p = path.join(dir, 'temporal');
      if (dir && existsSync(p)) return p;
    }
    return undefined;
  };
  const candidates = [process.env.MS2M_TEMPORAL_BIN, fromStack(), onPath(), path.join(cacheDir(), 'bin', 'temporal')];
  const found = candidates.find(works);
  if (!found) {
    throw new Error(
      `the workflow tests need the temporal CLI and found none (tried MS2M_TEMPORAL_BIN, ${path.join(cacheDir(), 'stack.env')}, PATH, ${path.join(cacheDir(), 'bin', 'temporal')}); ` +
        'run `bash infra/ensure-temporal.sh` (or `bash infra/stack.sh`, which npm test runs) once to install it into the cache, or set MS2M_TEMPORAL_BIN',
    );
  }
  return found;
}

let runtimeInstalled = false;
function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  // The workflows log warnings on purpose (rollbacks, retries); keep the test output to real errors.
  Runtime.install({ logger: new DefaultLogger(process.env.MS2M_TEST_LOG === '1' ? 'INFO' : 'ERROR') });
}

/** A dev server for this test file, on a free port of its own, with ms2m's search attributes registered. */
export async function createTestEnv(): Promise<TestWorkflowEnvironment> {
  const bin = temporalBinary();
  quietRuntime();
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: bin },
      searchAttributes: [SA_SERVICE, SA_SOURCE_NODE, SA_TARGET_NODE, SA_STRATEGY, SA_PHASE],
      log: { format: 'pretty', level: 'error' },
    },
  });
}

/**
 * The payload converter as a module Node can require: workers load it with a plain require(), which cannot
 * read TypeScript, so the source is transpiled next to node_modules (where its imports resolve). Always
 * from the current source, so the tests never run a stale build.
 */
export function payloadConverterPath(): string {
  const dir = path.join(ROOT, 'node_modules', '.cache', 'ms2m-tests');
  mkdirSync(dir, { recursive: true });
  const out = path.join(dir, 'payload-converter.js');
  const js = ts.transpileModule(readFileSync(CONVERTER_SOURCE, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    fileName: CONVERTER_SOURCE,
  }).outputText;
  if (/require\("\.\.?\//.test(js)) throw new Error(`${CONVERTER_SOURCE} now imports project modules; payloadConverterPath() in ${__filename} must bundle them`);
  if (!existsSync(out) || readFileSync(out, 'utf8') !== js) writeFileSync(out, js);
  return out;
}

let bundle: Promise<WorkflowBundle> | undefined;
/** The workflows as the orchestrator worker runs them, bundled once per test file. */
export function workflowBundle(): Promise<WorkflowBundle> {
  quietRuntime();
  bundle ??= bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    payloadConverterPath: CONVERTER_SOURCE,
    logger: new DefaultLogger('WARN'),
  });
  return bundle;
}

let taskQueues = 0;
/** A task queue no other test of this run uses, so tests can run side by side on one server. */
export function freshTaskQueue(name: string): string {
  return `wft-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}-${process.pid}-${++taskQueues}`;
}

/**
 * Runs `fn` with the fake cluster's workers polling: the orchestrator's queue (workflows, cluster and
 * broker activities) and one queue per node whose agent is up (`served`). A node that is not served has
 * no worker at all, as when its agent is gone.
 */
export async function withWorkers<T>(env: TestWorkflowEnvironment, fake: FakeCluster, fn: () => Promise<T>): Promise<T> {
  const common = { connection: env.nativeConnection, namespace: env.namespace ?? 'default', shutdownGraceTime: '200ms' as const };
  const dataConverter = { payloadConverterPath: payloadConverterPath() };
  const workers = [
    await Worker.create({
      ...common,
      taskQueue: fake.taskQueue,
      workflowBundle: await workflowBundle(),
      // Workflows run in this thread: a worker is up in ~50 ms instead of ~500 ms (no worker threads that
      // each load the bundle). Same sandbox and same determinism checks; only the deadlock detector is off.
      debugMode: true,
      dataConverter,
      activities: fake.orchestratorActivities(),
    }),
    ...(await Promise.all(
      fake.servedNodes().map((node) =>
        Worker.create({ ...common, taskQueue: nodeTaskQueue(fake.taskQueue, node), dataConverter, activities: fake.nodeActivities(node) }),
      ),
    )),
  ];
  const running = workers.map((w) => w.run());
  try {
    return await fn();
  } finally {
    fake.releaseAll();
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.allSettled(running);
  }
}

/** Resolves once the workflow has run a workflow task after `event` (e.g. it has seen a cancel request). */
export async function workflowSaw(handle: WorkflowHandle, event: 'workflowExecutionCancelRequestedEventAttributes', timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const events = (await handle.fetchHistory()).events ?? [];
    const i = events.findIndex((e) => e[event]);
    if (i >= 0 && events.slice(i + 1).some((e) => e.workflowTaskCompletedEventAttributes)) return;
    if (Date.now() > until) throw new Error(`the workflow did not process ${event} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
