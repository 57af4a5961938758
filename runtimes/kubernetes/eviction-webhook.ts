/**
 * Evictions that migrate: a validating admission webhook on `pods/eviction`, served by the orchestrator.
 * `kubectl drain` (and anyone else who evicts through the Eviction API) asks the API server to evict each
 * pod; for a pod that opted in (label `ms2m.io/on-eviction: migrate`) and that ms2m serves a service
 * with, the webhook starts an `evacuate` workflow (the service moved off the pod's node as drainNode
 * moves it) and refuses the eviction with 429 Too Many Requests, the answer a PodDisruptionBudget gives
 * and kubectl drain retries every 5 s. Once the service has moved, ms2m itself ends the old pod, and the
 * next retry finds it gone: the drain completes. Any other eviction is allowed as it would be without ms2m.
 *
 * kubectl drain evicts by name and stops retrying only on success or NotFound, and a StatefulSet's pod
 * comes back under the same name on the target: a retry then names the migrated pod. A pod that ms2m
 * restored, on a node nobody drains (schedulable), is answered 404: the pod the evictor meant is gone
 * (kubectl then sees the uid change and is done), and the migrated one stays.
 *
 * A migration that fails leaves the pod serving where it is: the eviction stays refused (the state would
 * be lost otherwise), and ms2m tries again after RETRY_MS. Deleting the pod gives its state up.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import type { V1Pod } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { parseListenAddress } from '../../lib/listen-address';
import type { MoveOutcome } from '../../lib/rebalance';
import type { Workflows } from '../../lib/contracts';
import type { KubeApi } from './kube-api';
import type { V1Node } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };
import { seg } from './kube-api';
import { ANNOTATION_SOURCE, LABEL_COPY_FOR, LABEL_ON_EVICTION, LABEL_SERVICE, podPath } from './workloads';
/** After a failed move, an eviction starts another only this long after it ended (kubectl retries every 5 s). */
export const RETRY_MS = 30_000;

export interface AdmissionRequest {
  uid: string;
  resource?: { group?: string; version?: string; resource?: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation?: string;
  dryRun?: boolean;
}

export interface Verdict {
  allowed: boolean;
  status?: { code: number; reason: string; message: string };
}

/** A move as Temporal knows it: running, or ended (with its outcome when it returned one). */
export type MoveState = { running: true } | { running: false; endedAt: number; outcome: MoveOutcome | null; failure: string | null };

export interface EvictionDeps {
  namespaces: string[];
  pod(namespace: string, name: string): Promise<V1Pod | null>;
  /** Whether new pods may land on the node (a drained node is cordoned first). */
  schedulable(node: string): Promise<boolean>;
  move(workflowId: string): Promise<MoveState | null>;
  startMove(workflowId: string, input: { service: string; node: string }): Promise<void>;
  now(): number;
}

const allow: Verdict = { allowed: true };
const refuse = (message: string): Verdict => ({ allowed: false, status: { code: 429, reason: 'TooManyRequests', message } });

/** One eviction's verdict; starts the move it needs. A dry run only says what would happen. */
export async function decideEviction(req: AdmissionRequest, deps: EvictionDeps): Promise<Verdict> {
  if (req.resource?.resource !== 'pods' || req.subResource !== 'eviction' || !req.name || !req.namespace) return allow;
  if (!deps.namespaces.includes(req.namespace)) return allow;
  const pod = await deps.pod(req.namespace, req.name);
  // A copy that a migration is bringing up (of a pod that opted in): evicting it would end that migration.
  const copyFor = pod?.metadata?.labels?.[LABEL_COPY_FOR];
  if (copyFor && pod?.metadata?.labels?.[LABEL_ON_EVICTION] === 'migrate') return refuse(`${req.name} is the copy ms2m is bringing up for ${copyFor}; retry once it serves`);
  const service = pod?.metadata?.labels?.[LABEL_SERVICE];
  if (!pod || pod.metadata?.labels?.[LABEL_ON_EVICTION] !== 'migrate' || !service) return allow;
  const node = pod.spec?.nodeName ?? '';
  if (pod.metadata?.annotations?.[ANNOTATION_SOURCE] && (await deps.schedulable(node))) {
    return {
      allowed: false,
      status: { code: 404, reason: 'NotFound', message: `${req.name} on ${node} is the pod ms2m moved ${service} to, restored from the evicted one; the pod that was evicted is gone` },
    };
  }
  const id = `ms2m-evict-${service}-${pod.metadata!.uid!.slice(0, 8)}`;
  const start = async (again: boolean) => {
    if (!req.dryRun) await deps.startMove(id, { service, node });
    return refuse(`ms2m is moving ${service} off ${node}${again ? ' again' : ''} instead of evicting ${req.name} (workflow ${id}); evicting it is refused until then, so retry (kubectl drain does)`);
  };
  const m = await deps.move(id);
  if (!m) return start(false);
  if (m.running) return refuse(`ms2m is moving ${service} off ${node} (workflow ${id}); retry`);
  if (m.outcome?.outcome === 'completed') return refuse(`ms2m moved ${service} to ${m.outcome.to}; ${req.name} is ending, retry`);
  if (deps.now() - m.endedAt > RETRY_MS) return start(true);
  const why = m.outcome?.error ?? m.failure ?? 'it did not complete';
  return refuse(
    `ms2m could not move ${service} off ${node} (workflow ${id}: ${why}); ${req.name} keeps serving there with its state and ms2m tries again within ${RETRY_MS / 1000} s. ` +
      `To evict it without its state, delete the pod`,
  );
}

/** The webhook's dependencies in the orchestrator: the API server and Temporal. */
export function evictionDeps(api: KubeApi, client: Client, taskQueue: string, namespaces: string[]): EvictionDeps {
  return {
    namespaces,
    pod: (ns, name) => api.find<V1Pod>(podPath(ns, name)),
    schedulable: async (node) => !(await api.find<V1Node>(`/api/v1/nodes/${seg(node)}`))?.spec?.unschedulable,
    async move(workflowId) {
      const handle = client.workflow.getHandle<Workflows['evacuate']>(workflowId);
      try {
        const d = await handle.describe();
        if (d.status.name === 'RUNNING') return { running: true };
        const endedAt = d.closeTime?.getTime() ?? 0;
        if (d.status.name === 'COMPLETED') return { running: false, endedAt, outcome: await handle.result(), failure: null };
        return { running: false, endedAt, outcome: null, failure: `it ended ${d.status.name.toLowerCase()}` };
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return null;
        throw err;
      }
    },
    async startMove(workflowId, input) {
      try {
        await client.workflow.start<Workflows['evacuate']>('evacuate', { taskQueue, workflowId, args: [input] });
      } catch (err) {
        // Another eviction of the same pod started it a moment ago.
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
    },
    now: () => Date.now(),
  };
}

/** Serves AdmissionReview v1 on POST /evict over TLS; a failure to decide refuses (429) rather than lose a state. */
export function serveEvictionWebhook(o: { listen: string; certDir: string; deps: EvictionDeps; log: (line: string) => void }): Promise<Server> {
  const { host, port } = parseListenAddress(o.listen, 'MS2M_WEBHOOK_LISTEN');
  const server = createServer({ key: readFileSync(`${o.certDir}/tls.key`), cert: readFileSync(`${o.certDir}/tls.crt`) }, (req, res) => {
    if (req.method !== 'POST' || req.url?.split('?')[0] !== '/evict') {
      res.writeHead(404).end();
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => {
      body += d;
      if (body.length > 1 << 20) req.destroy();
    });
    req.on('end', () => {
      void (async () => {
        let request: AdmissionRequest | undefined;
        let verdict: Verdict;
        try {
          request = (JSON.parse(body) as { request?: AdmissionRequest }).request;
          if (!request?.uid) throw new Error('not an AdmissionReview with a request');
          verdict = await decideEviction(request, o.deps);
        } catch (err) {
          verdict = refuse(`ms2m could not decide on this eviction (${(err as Error).message}); retry`);
        }
        if (request && !verdict.allowed) o.log(`eviction of ${request.namespace}/${request.name} refused: ${verdict.status?.message}`);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: request?.uid ?? '', ...verdict } }));
      })();
    });
  });
  // The port may still be held by the orchestrator this one replaces (on the host network): try for a while.
  const until = Date.now() + 60_000;
  const bind = (): Promise<Server> =>
    new Promise((resolve, reject) => {
      const failed = (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EADDRINUSE' || Date.now() > until) return reject(new Error(`the eviction webhook cannot listen on ${o.listen}: ${err.message}`));
        setTimeout(() => bind().then(resolve, reject), 1000);
      };
      server.once('error', failed);
      server.listen(port, host, () => {
        server.off('error', failed);
        o.log(`eviction webhook on https://${o.listen} (bound ${(server.address() as AddressInfo).port})`);
        resolve(server);
      });
    });
  return bind();
}
