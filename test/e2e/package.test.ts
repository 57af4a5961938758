/**
 * ms2m as an npm package: `npm pack` of the checkout (as compiled), installed into a scratch project of
 * its own, which compiles a strict TypeScript program against `ms2m/sdk` and `ms2m/service` and runs it
 * against the real stack. The program's own counter service (MigratableService, built in the scratch
 * project) is deployed through the SDK, loaded with a StampingProducer, migrated to another node under
 * that load and read back over the control protocol; nothing of this checkout is on its import path.
 * Also: what the tarball holds (no tests, no docs or benchmarks), the `ms2m` bin, and that the
 * bench-only dependencies stay out of a production install.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClusterHandle } from '../../runtimes/types';
import { startE2eCluster, stopE2eCluster, type E2eCluster } from './e2e-cluster';
import { undeploy } from '../../cli/scenario';
import { loadConfig } from '../../lib/config';

const ROOT = loadConfig().projectRoot;
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
/** Used by bench/ only (its plots): a production install must not bring them. */
const BENCH_ONLY = ['vega', 'vega-lite', '@resvg/resvg-js'];

const run = Date.now().toString(36);
const taskQueue = `ms2m-package-${run}`;
const service = `pkg-${run}`;
let e2e: E2eCluster | undefined;
let cluster: ClusterHandle;
let work: string;
let scratch: string;
let tarball: string;
let tarEntries: string[];
let deployed = false;

interface Ran {
  stdout: string;
  stderr: string;
}

/** Runs a command; a failure says which, with the end of its output. */
async function sh(cmd: string, args: string[], o: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number }): Promise<Ran> {
  try {
    return await promisify(execFile)(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, timeout: o.timeout ?? 120_000, maxBuffer: 64 << 20 });
  } catch (err) {
    const e = err as Error & Partial<Ran> & { code?: number | string };
    const tail = `${e.stdout ?? ''}\n${e.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} (in ${o.cwd}) failed (${e.code ?? e.message}):\n${tail}`);
  }
}

// --- the consumer's project: its own package.json, tsconfig and sources ---------------------------------

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'Node16',
    moduleResolution: 'Node16',
    strict: true,
    skipLibCheck: true,
    outDir: 'dist',
    rootDir: 'src',
    types: ['node'],
  },
  include: ['src'],
};

/**
 * The same program checked with skipLibCheck off, so the declarations ms2m ships are type-checked too,
 * with everything they reference. @temporalio/common's own declarations import the types of `ms`, whose
 * package (3.0.0-canary.1) exports no types for `require`: that error is upstream's (temporalio/sdk-typescript#1668)
 * and the only one allowed, never one in ms2m's files or the program's.
 */
const TSCONFIG_LIBCHECK = { extends: './tsconfig.json', compilerOptions: { skipLibCheck: false, noEmit: true } };
const UPSTREAM_LIB_ERROR = /^node_modules\/@temporalio\/common\/lib\/time\.d\.ts\(\d+,\d+\): error TS7016: Could not find a declaration file for module 'ms'\./;

const TOPOLOGY_TS = `
export interface CounterState {
  count: number;
  sum: number;
}

export function counterTopology(service: string) {
  return { exchange: \`\${service}.numbers\`, queue: \`\${service}.primary\`, output: \`\${service}.totals\` };
}
`;

/** A migratable service of the consumer's own: counts and sums the numbers it is sent. */
const COUNTER_TS = `
import { MigratableService, type ApplyContext, type InputMessage } from 'ms2m/service';
import { counterTopology, type CounterState } from './topology.js';

const service = process.env.MS2M_SERVICE ?? 'counter';
const topology = counterTopology(service);

const svc = new MigratableService<CounterState>({
  service,
  amqpUrl: process.env.MS2M_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
  input: { exchange: topology.exchange, queue: topology.queue, bindings: ['#'] },
  output: { exchange: topology.output },
  initialState: () => ({ count: 0, sum: 0 }),
  apply(state: CounterState, message: InputMessage, ctx: ApplyContext) {
    const { n } = JSON.parse(message.body.toString()) as { n: number };
    state.count += 1;
    state.sum += n;
    ctx.emit('total', { count: state.count, sum: state.sum });
  },
  describe: (state) => ({ count: state.count, sum: state.sum }),
});

for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => void svc.stop().then(() => process.exit(0)));
await svc.start();
`;

/**
 * Through ms2m/sdk: refuses bad input, deploys the counter on one node, migrates it to another while a
 * StampingProducer (ms2m/service) sends it numbers, finds the migration again and undeploys. Through
 * ms2m/service's ControlClient: the state of the instance serving at the end. One JSON line on stdout.
 */
const MAIN_TS = `
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import * as amqp from 'amqplib';
import { Ms2mClient, Ms2mInputError, type MigrationReport, type MigrationSummary, type Placement, type Stage } from 'ms2m/sdk';
import { ControlClient, StampingProducer, type InstanceStatus, type Published } from 'ms2m/service';
import { counterTopology } from './topology.js';

const [service, from, to] = process.argv.slice(2);
const amqpUrl = process.env.MS2M_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const TOTAL = 400;
const topology = counterTopology(service);

const ms2m = await Ms2mClient.connect(); // MS2M_TEMPORAL_ADDRESS and MS2M_TASK_QUEUE from the environment
const refused = await ms2m.startMigration({ service: 'Not A Name', targetNode: to }).then(
  () => 'not refused',
  (err: unknown) => (err instanceof Ms2mInputError ? err.message : \`not an Ms2mInputError: \${String(err)}\`),
);

const counter = fileURLToPath(new URL('./counter.js', import.meta.url));
const deploy = await ms2m.startDeploy({
  service,
  node: from,
  spec: { command: [process.execPath, counter], env: { MS2M_SERVICE: service, MS2M_AMQP_URL: amqpUrl }, primaryQueue: topology.queue },
});
const placement: Placement = await deploy.result();

const conn = await amqp.connect(amqpUrl);
const producer = new StampingProducer(await conn.createConfirmChannel(), \`\${service}-numbers\`, topology.exchange);
const confirms: Array<Promise<Published>> = [];
let expectedSum = 0;
const load = (async () => {
  for (let n = 1; n <= TOTAL; n++) {
    confirms.push(producer.publish('number', { n }));
    expectedSum += n;
    await sleep(10);
  }
})();

await sleep(1_000);
const migration = await ms2m.startMigration({ service, targetNode: to });
const sentBefore = confirms.length;
const stages = new Set<Stage>();
const report: MigrationReport = await migration.result({ onProgress: (p) => stages.add(p.stage) });
const sentDuring = confirms.length - sentBefore;
await load;
await Promise.all(confirms);
const unconfirmed = await producer.close();
await conn.close();

const control = await ControlClient.connect(amqpUrl, \`\${service}-reader\`);
let status: InstanceStatus;
for (const until = Date.now() + 30_000; ; await sleep(200)) {
  status = await control.command(report.targetInstance, { kind: 'status' });
  if (status.app.count === TOTAL || Date.now() > until) break;
}
await control.close();

let listed: MigrationSummary | undefined;
for (const until = Date.now() + 20_000; !listed && Date.now() < until; await sleep(300)) {
  listed = (await ms2m.listMigrations({ service })).find((m) => m.workflowId === migration.workflowId && m.phase === 'done');
}
const undeployed = await ms2m.undeploy(service);
await ms2m.close();

console.log(
  JSON.stringify({
    refused,
    deployedOn: placement.node,
    migration: { workflowId: migration.workflowId, outcome: report.outcome, from: report.sourceNode, to: report.targetNode, stateMatch: report.stateMatch, handoff: report.accounting.handoff, stages: [...stages] },
    published: TOTAL,
    sentBefore,
    sentDuring,
    unconfirmed,
    expectedSum,
    serving: { instance: status.instanceId, count: status.app.count, sum: status.app.sum, gaps: status.gaps },
    listed: listed?.workflowId ?? null,
    undeployed: undeployed.stopped,
  }),
);
`;

/** Packs the checkout as it is compiled, and installs the tarball into a new project with npm's cache. */
async function packAndInstall(): Promise<void> {
  // --ignore-scripts: pack what the test command compiled, without prepack compiling again.
  const packed = await sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT });
  tarball = path.join(work, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0].filename);
  tarEntries = (await sh('tar', ['-tzf', tarball], { cwd: work })).stdout.split('\n').filter(Boolean);

  mkdirSync(path.join(scratch, 'src'), { recursive: true });
  writeFileSync(path.join(scratch, 'package.json'), JSON.stringify({ name: 'ms2m-consumer', version: '1.0.0', private: true, type: 'module' }, null, 2));
  writeFileSync(path.join(scratch, 'tsconfig.json'), JSON.stringify(TSCONFIG, null, 2));
  writeFileSync(path.join(scratch, 'tsconfig.libcheck.json'), JSON.stringify(TSCONFIG_LIBCHECK, null, 2));
  writeFileSync(path.join(scratch, 'src', 'topology.ts'), TOPOLOGY_TS);
  writeFileSync(path.join(scratch, 'src', 'counter.ts'), COUNTER_TS);
  writeFileSync(path.join(scratch, 'src', 'main.ts'), MAIN_TS);
  const versions = [
    `typescript@${pkg.devDependencies.typescript}`,
    `@types/node@${pkg.devDependencies['@types/node']}`,
    `amqplib@${pkg.dependencies.amqplib}`,
  ];
  await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball, ...versions], { cwd: scratch, timeout: 150_000 });
}

beforeAll(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'ms2m-pack-'));
  scratch = path.join(work, 'consumer');
  // The install waits mostly on the disk and the registry's cache, the cluster on its processes: side by side.
  const starting = startE2eCluster('package', ['node-a', 'node-b'], { taskQueue }).then((c) => (e2e = c));
  for (const r of await Promise.allSettled([starting, packAndInstall()])) if (r.status === 'rejected') throw r.reason;
  cluster = e2e!.cluster;
});

afterAll(async () => {
  if (deployed && e2e) await undeploy(cluster, service).catch(() => undefined);
  await stopE2eCluster(e2e);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the ms2m npm package', () => {
  it('packs the compiled entry points, the bin, the workers and the stack scripts, and no tests, docs or benchmarks', () => {
    const files = tarEntries.map((e) => e.replace(/^package\//, ''));
    for (const f of [
      'package.json',
      'dist/sdk/index.js',
      'dist/sdk/index.d.ts',
      'dist/service/index.js',
      'dist/service/index.d.ts',
      'dist/cli/main.js',
      'dist/workers/orchestrator.js',
      'dist/workers/node-agent.js',
      'dist/workflows/index.js',
      'dist/examples/game/service.js',
      'infra/stack.sh',
      'infra/lib.sh',
    ]) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => /(^|\/)tests?\/|\.test\.[a-z]+$|\.spec\.[a-z]+$|^docs\/|^bench\/|^dist\/bench\/|\.tsbuildinfo$|^node_modules\//.test(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
  });

  it('installs without the bench-only dependencies, exports only its entry points, and its ms2m bin runs the stack from the package', async () => {
    const nm = path.join(scratch, 'node_modules');
    expect(existsSync(path.join(nm, 'ms2m', 'package.json'))).toBe(true);
    expect(BENCH_ONLY.filter((d) => existsSync(path.join(nm, d)))).toEqual([]);

    const probe = await sh(
      process.execPath,
      [
        '-e',
        `const v = require('ms2m/package.json').version;
         let deep; try { require('ms2m/dist/lib/config.js'); deep = 'resolved'; } catch (e) { deep = e.code; }
         console.log(JSON.stringify({ v, sdk: typeof require('ms2m/sdk').Ms2mClient, service: typeof require('ms2m/service').MigratableService, deep }));`,
      ],
      { cwd: scratch },
    );
    expect(JSON.parse(probe.stdout)).toEqual({ v: pkg.version, sdk: 'function', service: 'function', deep: 'ERR_PACKAGE_PATH_NOT_EXPORTED' });

    const help = await sh(path.join(nm, '.bin', 'ms2m'), ['--help'], { cwd: scratch });
    expect(help.stdout).toMatch(/^Usage: ms2m \[options\] \[command\]/);
    for (const cmd of ['demo', 'stack', 'orchestrator', 'agent', 'migrate']) expect(help.stdout).toMatch(new RegExp(`^  ${cmd} `, 'm'));
    // The installed package finds its own infra/ (up already: beforeAll brought the stack up).
    const stack = await sh(path.join(nm, '.bin', 'ms2m'), ['stack'], { cwd: scratch });
    expect(stack.stdout).toMatch(/^MS2M_TEMPORAL_ADDRESS=\S+$/m);
    expect(stack.stdout).toMatch(/^MS2M_AMQP_URL=amqp:\/\/\S+$/m);
  }, 60_000);

  it(
    "compiles a strict program against ms2m/sdk and ms2m/service, and ms2m's declarations type-check",
    async () => {
      const tsc = path.join(scratch, 'node_modules', '.bin', 'tsc');
      const [build, libcheck] = await Promise.allSettled([
        sh(tsc, ['-p', 'tsconfig.json'], { cwd: scratch }),
        promisify(execFile)(tsc, ['-p', 'tsconfig.libcheck.json'], { cwd: scratch }).then(
          (r) => r.stdout,
          (e: { stdout?: string }) => e.stdout ?? String(e),
        ),
      ]);
      if (build.status === 'rejected') throw build.reason;
      for (const f of ['main.js', 'counter.js', 'topology.js']) expect(existsSync(path.join(scratch, 'dist', f))).toBe(true);
      const errors = (libcheck as PromiseFulfilledResult<string>).value.split('\n').filter((l) => /error TS\d+/.test(l));
      expect(errors.filter((l) => !UPSTREAM_LIB_ERROR.test(l))).toEqual([]);
    },
    60_000,
  );

  it(
    'runs the program against the stack: its own service deployed, migrated under load and read back',
    async () => {
      deployed = true;
      const out = await sh(process.execPath, [path.join(scratch, 'dist', 'main.js'), service, 'node-a', 'node-b'], {
        cwd: scratch,
        env: { ...process.env, MS2M_TASK_QUEUE: taskQueue },
        timeout: 100_000,
      });
      const result = JSON.parse(out.stdout.trim().split('\n').at(-1)!) as {
        refused: string;
        deployedOn: string;
        migration: { workflowId: string; outcome: string; from: string; to: string; stateMatch: boolean; handoff: string; stages: string[] };
        published: number;
        sentBefore: number;
        sentDuring: number;
        unconfirmed: number;
        expectedSum: number;
        serving: { instance: string; count: number; sum: number; gaps: number };
        listed: string | null;
        undeployed: boolean;
      };
      expect(result.refused).toMatch(/^invalid migrateService input: service: /);
      expect(result.deployedOn).toBe('node-a');
      expect(result.migration).toMatchObject({ workflowId: `migrate-${service}`, outcome: 'completed', from: 'node-a', to: 'node-b', stateMatch: true, handoff: 'exact' });
      expect(result.migration.stages.at(-1)).toBe('done');
      // Under load: numbers went out before the migration started and while it ran.
      expect(result.sentBefore).toBeGreaterThan(0);
      expect(result.sentDuring).toBeGreaterThan(0);
      // Every number applied once, by the instance serving on node-b.
      expect(result.unconfirmed).toBe(0);
      expect(result.serving).toEqual({ instance: expect.any(String), count: result.published, sum: result.expectedSum, gaps: 0 });
      expect(result.listed).toBe(`migrate-${service}`);
      expect(result.undeployed).toBe(true);
      deployed = false;
      expect(await cluster.liveInstances(service)).toEqual([]);
    },
    120_000,
  );
});
