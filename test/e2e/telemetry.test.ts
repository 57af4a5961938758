/**
 * What an operator reads about a migration, from a real one on the local runtime (workers as processes):
 * - its trace, exported by every worker over OTLP/HTTP to a collector in this test: the workflow's run
 *   with the migration's id and service, a span per phase, the activities under their phases, run on the
 *   agents that did them (their own service name), all in one trace;
 * - the workers' logs: JSON lines, every line of the migration's workflow and activities carrying its
 *   workflow id, migration id and phase;
 * - no credentials: the broker's password (of a broker user made for this test) appears in no worker's
 *   or service's log and in no workflow history.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScenario } from '../../cli/scenario';
import { loadConfig } from '../../lib/config';
import { ensureStack } from '../../lib/stack';
import type { MigrationReport } from '../../lib/migration';
import { startE2eCluster, stopE2eCluster, type E2eCluster } from './e2e-cluster';
import { expectExact } from './exact';

const run = Date.now().toString(36);
const taskQueue = `ms2m-telemetry-${run}`;
const user = `ms2m-telemetry-${run}`;
const password = `pw-${run}-${Math.random().toString(36).slice(2, 10)}`;
let e2e: E2eCluster;
let collector: Server;
let mgmt: { base: string; auth: string };
let report: MigrationReport;

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: Array<{ key: string; value: { stringValue?: string } }>;
  service: string;
}
const spans: OtlpSpan[] = [];
const attr = (s: OtlpSpan, key: string): string | undefined => s.attributes?.find((a) => a.key === key)?.value.stringValue;

/** OTLP/HTTP with JSON bodies (the exporter's default): resourceSpans → scopeSpans → spans. */
function startCollector(): Promise<string> {
  collector = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const msg = JSON.parse(body || '{}') as { resourceSpans?: Array<{ resource?: { attributes?: OtlpSpan['attributes'] }; scopeSpans?: Array<{ spans?: OtlpSpan[] }> }> };
      for (const rs of msg.resourceSpans ?? []) {
        const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
        for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) spans.push({ ...s, service });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return new Promise((resolve) => collector.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(collector.address() as AddressInfo).port}`)));
}

async function management(method: string, p: string, body?: unknown): Promise<void> {
  const res = await fetch(`${mgmt.base}/api${p}`, { method, headers: { authorization: mgmt.auth, 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
  if (!res.ok && !(method === 'DELETE' && res.status === 404)) throw new Error(`${method} ${p}: HTTP ${res.status} ${await res.text()}`);
}

beforeAll(async () => {
  await ensureStack();
  const cfg = loadConfig();
  const m = new URL(cfg.amqpMgmtUrl);
  mgmt = { base: `${m.protocol}//${m.host}`, auth: `Basic ${Buffer.from(`${decodeURIComponent(m.username)}:${decodeURIComponent(m.password)}`).toString('base64')}` };
  // A broker user of this test's own, with a password nothing else contains.
  await management('PUT', `/users/${encodeURIComponent(user)}`, { password, tags: 'administrator' });
  await management('PUT', `/permissions/%2F/${encodeURIComponent(user)}`, { configure: '.*', write: '.*', read: '.*' });
  const amqp = new URL(cfg.amqpUrl);
  amqp.username = user;
  amqp.password = password;
  m.username = user;
  m.password = password;
  // The workers started below, and this process, use that user.
  process.env.MS2M_AMQP_URL = amqp.toString();
  process.env.MS2M_AMQP_MGMT_URL = m.toString().replace(/\/$/, '');
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = await startCollector();
  process.env.MS2M_LOG_FORMAT = 'json';
  e2e = await startE2eCluster('telemetry', ['node-a', 'node-b'], { taskQueue });
  ({ report } = await runScenario(e2e.cluster, { service: `tel-${run}`, workload: 'ledger', from: 'node-a', to: 'node-b', strategy: 'shadow', rate: 40, stateBytes: 2 * 1024 * 1024 }));
}, 300_000);

afterAll(async () => {
  await stopE2eCluster(e2e);
  collector?.close();
  if (mgmt) await management('DELETE', `/users/${encodeURIComponent(user)}`).catch(() => undefined);
});

function filesUnder(dir: string, match: (f: string) => boolean): string[] {
  const out: string[] = [];
  for (const f of readdirSync(dir)) {
    const p = path.join(dir, f);
    const st = statSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) out.push(...filesUnder(p, match));
    else if (st?.isFile() && match(f)) out.push(p);
  }
  return out;
}

describe('a migration as an operator sees it', () => {
  it('ran exactly', () => {
    expect(report.outcome).toBe('completed');
    expectExact(report.verification!, 10);
  });

  it('is one trace: the workflow run with its id and service, a span per phase, each activity under its phase on the worker that ran it', async () => {
    // The agents and the orchestrator send their batches every 500 ms.
    const root = await (async () => {
      for (let i = 0; i < 40; i++) {
        const r = spans.find((s) => s.name === 'RunWorkflow:migrateService' && attr(s, 'ms2m.migration_id') === report.migrationId);
        if (r && spans.some((s) => s.traceId === r.traceId && s.name === 'phase finalize')) return r;
        await new Promise((res) => setTimeout(res, 250));
      }
      throw new Error(`no complete trace of ${report.migrationId} among ${spans.length} spans: ${[...new Set(spans.map((s) => s.name))].join(', ')}`);
    })();
    expect(attr(root, 'ms2m.service')).toBe(`tel-${run}`);
    expect(root.service).toBe('ms2m-orchestrator');
    await new Promise((res) => setTimeout(res, 1500)); // the agents' last batches
    const trace = spans.filter((s) => s.traceId === root.traceId);
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const parent = (s: OtlpSpan) => (s.parentSpanId ? byId.get(s.parentSpanId) : undefined);

    // The tree as an operator's tracing UI shows it (in the test's output).
    const children = (id: string) => trace.filter((s) => s.parentSpanId === id);
    const render = (s: OtlpSpan, depth: number): string[] => [`${'  '.repeat(depth)}${s.name}  [${s.service}]`, ...children(s.spanId).flatMap((c) => render(c, depth + 1))];
    console.log(`trace ${root.traceId} of ${report.migrationId}:\n${render(root, 0).join('\n')}`);

    // A span per phase of the report, under the run (transfer ran inside checkpoint's activity: under it).
    const phases = trace.filter((s) => /^phase [a-z]+$/.test(s.name));
    expect(phases.map((s) => s.name.slice('phase '.length)).sort()).toEqual(report.phases.map((p) => p.phase).sort());
    for (const p of phases) {
      expect([p.name, attr(p, 'ms2m.migration_id')]).toEqual([p.name, report.migrationId]);
      const up = parent(p)!;
      expect([p.name, up.name]).toEqual([p.name, p.name === 'phase transfer' && up.name === 'phase checkpoint' ? 'phase checkpoint' : 'RunWorkflow:migrateService']);
    }

    // Every activity the migration ran: started under a phase, run on a worker whose span is in this trace.
    const runs = trace.filter((s) => s.name.startsWith('RunActivity:'));
    expect(runs.length).toBeGreaterThan(5);
    for (const r of runs) {
      const start = parent(r);
      expect([r.name, start?.name.startsWith('StartActivity:') || start?.name.startsWith('StartLocalActivity:')]).toEqual([r.name, true]);
      // Under a phase, or under the run itself for the few looks taken between phases.
      const from = parent(start!);
      expect([r.name, from?.name.startsWith('phase ') || from === root]).toEqual([r.name, true]);
    }
    // The checkpoint ran on the source's agent, the restore on the target's: processes of their own.
    const onAgent = (activity: RegExp) => runs.filter((r) => activity.test(r.name)).map((r) => `${r.service}`);
    expect(onAgent(/^RunActivity:checkpoint(AndSend)?$/)).toContain('ms2m-agent');
    expect(onAgent(/^RunActivity:restore(AndReplay)?$/)).toContain('ms2m-agent');
    expect(parent(parent(runs.find((r) => /^RunActivity:checkpoint(AndSend)?$/.test(r.name))!)!)!.name).toBe('phase checkpoint');
  });

  it("logs JSON lines, every one of the migration's carrying its workflow id, migration id and phase", () => {
    const lines = ['orchestrator.log', 'agent-node-a.log', 'agent-node-b.log']
      .flatMap((f) => readFileSync(path.join(e2e.home, f), 'utf8').split('\n'))
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const ours = lines.filter((l) => l.workflowId === report.workflowId);
    expect(ours.length).toBeGreaterThan(0);
    for (const l of ours) expect([l.msg, l.migrationId, typeof l.phase]).toEqual([l.msg, report.migrationId, 'string']);
    // The workflow's lines (each phase it enters) and the activities' (the tools' figures on the agents).
    expect(ours.some((l) => l.component === 'orchestrator' && l.msg === `tel-${run}: fence`)).toBe(true);
    expect(ours.some((l) => l.component === 'agent' && l.node === 'node-a' && l.phase === 'checkpoint' && String(l.msg).startsWith('checkpoint: '))).toBe(true);
    expect(ours.some((l) => l.component === 'agent' && l.node === 'node-b' && l.phase === 'restore' && String(l.msg).startsWith('restore: '))).toBe(true);
    expect(lines.every((l) => typeof l.component === 'string' && typeof l.level === 'number')).toBe(true);
  });

  it("shows the broker's password in no log and no workflow history", async () => {
    const logs = filesUnder(e2e.home, (f) => f.endsWith('.log'));
    expect(logs.length).toBeGreaterThanOrEqual(3);
    for (const f of logs) expect([f, readFileSync(f, 'utf8').includes(password)]).toEqual([f, false]);
    // The control: the workers and the services did connect as that user, with that password.
    const res = await fetch(`${mgmt.base}/api/connections`, { headers: { authorization: mgmt.auth } });
    const connections = (await res.json()) as Array<{ user: string; client_properties?: { connection_name?: string } }>;
    expect(connections.filter((c) => c.user === user).length).toBeGreaterThanOrEqual(3);
    const client = e2e.cluster.client;
    const ids: Array<{ workflowId: string; runId: string }> = [];
    for await (const w of client.workflow.list({ query: `TaskQueue = '${taskQueue}'` })) ids.push({ workflowId: w.workflowId, runId: w.runId });
    expect(ids.map((i) => i.workflowId)).toContain(report.workflowId);
    for (const { workflowId, runId } of ids) {
      // Payloads are bytes, base64 in the history's JSON: decoded, or the password would be invisible in them.
      const history = JSON.stringify(await client.workflow.getHandle(workflowId, runId).fetchHistory(), (k, v: unknown) =>
        v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : k === 'data' && typeof v === 'string' ? Buffer.from(v, 'base64').toString('utf8') : v,
      );
      expect(history.length).toBeGreaterThan(1000);
      if (workflowId === report.workflowId) expect(history).toContain(`tel-${run}`);
      expect([workflowId, history.includes(password)]).toEqual([workflowId, false]);
    }
  });
});
