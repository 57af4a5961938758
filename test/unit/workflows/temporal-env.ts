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
import { migrationSinks } from '../../../lib/metrics';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { Context } from '@temporalio/activity';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import ts from 'typescript';
import { cacheDir } from '../../../lib/config';
import { SA_PHASE, SA_SERVICE, SA_SOURCE_NODE, SA_STRATEGY, SA_TARGET_NODE } from '../../../lib/search-attributes';
import { FakeCluster, fakeNodeQueue } from './fake-runtime';

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
  const explicit = process.env.MS2M_TEMPORAL_BIN;
  // As in ensure-temporal.sh: an explicit choice that does not work is a configuration error.
  if (explicit && !works(explicit)) throw new Error(`MS2M_TEMPORAL_BIN=${explicit} is not a working temporal CLI ('--version' failed); fix or unset it`);
  const candidates = [explicit, fromStack(), onPath(), path.join(cacheDir(), 'bin', 'temporal')];
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
  // The workflows log warnings on purpose (rollbacks, retries), and so does the SDK's core (a replay that
  // fails on purpose, a workflow task held open by a local activity): keep the output to real errors.
  // MS2M_TEST_LOG=1 shows everything from INFO up.
  const level = process.env.MS2M_TEST_LOG === '1' ? 'INFO' : 'ERROR';
  Runtime.install({ logger: new DefaultLogger(level), telemetryOptions: { logging: { filter: { core: level, other: level } } } });
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

/** The nodes whose queues the testbed's agents serve; a fake cluster's unserved node must have another name. */
export const SERVED_NODES = ['node-a', 'node-b', 'node-c', 'node-d'];

let queues = 0;

/**
 * The Temporal side of one test file: a dev server, and workers for the orchestrator's queue (the
 * workflows, the cluster and broker activities) and for each of SERVED_NODES's queues. Every test has a
 * fake cluster of its own, attached to its workflow id: each activity call goes to the fake of the
 * workflow that made it (a child migration's id starts with its parent's). Tests thus run side by side
 * on one set of workers, which start once per file instead of once per test.
 */
export class WorkflowTestbed {
  private readonly fakes = new Map<string, FakeCluster>();
  private workers: Worker[] = [];
  private running: Array<Promise<void>> = [];
  private ids = 0;

  private constructor(
    readonly env: TestWorkflowEnvironment,
    readonly taskQueue: string,
  ) {}

  static async start(): Promise<WorkflowTestbed> {
    const env = await createTestEnv();
    const bed = new WorkflowTestbed(env, `wft-${process.pid}-${++queues}`);
    try {
      await bed.startWorkers(bed.taskQueue, SERVED_NODES);
    } catch (err) {
      await env.teardown();
      throw err;
    }
    return bed;
  }

  get client() {
    return this.env.client;
  }

  /** A workflow id no other test of this file uses. */
  workflowId(name: string): string {
    return `${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}-${++this.ids}`;
  }

  /** Sends the activities of `workflowId` (and of its children) to `fake`. */
  attach(workflowId: string, fake: FakeCluster): void {
    for (const n of fake.nodes.values()) {
      if (n.served !== SERVED_NODES.includes(n.node)) {
        throw new Error(`fake node ${n.node}: the testbed serves ${SERVED_NODES.join(', ')}; name an unserved node otherwise, and a served one among them`);
      }
    }
    this.fakes.set(workflowId, fake);
  }

  private fakeOf(workflowId: string): FakeCluster {
    let best: string | undefined;
    for (const id of this.fakes.keys()) if ((workflowId === id || workflowId.startsWith(`${id}-`)) && id.length > (best?.length ?? -1)) best = id;
    if (best === undefined) throw new Error(`no fake cluster is attached to workflow ${workflowId}`);
    return this.fakes.get(best)!;
  }

  /** Activities that look up the calling workflow's fake on every call. */
  private route<T extends object>(sample: T, pick: (fake: FakeCluster) => T): T {
    const perFake = new WeakMap<FakeCluster, T>();
    return Object.fromEntries(
      Object.keys(sample).map((name) => [
        name,
        (input: unknown) => {
          const fake = this.fakeOf(Context.current().info.workflowExecution?.workflowId ?? '');
          let acts = perFake.get(fake);
          if (!acts) perFake.set(fake, (acts = pick(fake)));
          return (acts as Record<string, (i: unknown) => Promise<unknown>>)[name](input);
        },
      ]),
    ) as T;
  }

  private async startWorkers(taskQueue: string, nodes: string[]): Promise<Worker[]> {
    const common = { connection: this.env.nativeConnection, namespace: this.env.namespace ?? 'default', shutdownGraceTime: '200ms' as const };
    const dataConverter = { payloadConverterPath: payloadConverterPath() };
    const sample = new FakeCluster();
    const workers = [
      await Worker.create({
        ...common,
        taskQueue,
        workflowBundle: await workflowBundle(),
        // Workflows run in this thread: no worker threads that each load the bundle. Same sandbox and same
        // determinism checks; only the deadlock detector is off.
        debugMode: true,
        dataConverter,
        sinks: migrationSinks,
        activities: this.route(sample.orchestratorActivities(), (f) => f.orchestratorActivities()),
        // Many migrations side by side.
        maxConcurrentLocalActivityExecutions: 200,
      }),
      ...(await Promise.all(
        nodes.map((node) =>
          Worker.create({
            ...common,
            taskQueue: fakeNodeQueue(taskQueue, node),
            dataConverter,
            activities: this.route(sample.nodeAgentActivities(node), (f) => f.nodeAgentActivities(node)),
          }),
        ),
      )),
    ];
    this.workers.push(...workers);
    this.running.push(...workers.map((w) => w.run()));
    return workers;
  }

  /**
   * Runs `fn` with workers of its own, started only now, on a task queue of its own: for a workflow that
   * must be started (and, say, cancelled) before any worker polls.
   */
  async withOwnWorkers<T>(taskQueue: string, fn: () => Promise<T>): Promise<T> {
    const workers = await this.startWorkers(taskQueue, SERVED_NODES);
    try {
      return await fn();
    } finally {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    }
  }

  /** A task queue of its own, for withOwnWorkers. */
  ownTaskQueue(): string {
    return `${this.taskQueue}-own-${++this.ids}`;
  }

  async stop(): Promise<void> {
    for (const f of this.fakes.values()) f.releaseAll();
    for (const w of this.workers) if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.allSettled(this.running);
    await this.env.teardown();
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
