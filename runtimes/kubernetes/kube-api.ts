/**
 * The Kubernetes API as the runtime uses it: JSON over HTTPS with the credentials of a KubeConfig from
 * @kubernetes/client-node (in a pod: its service account; outside: $KUBECONFIG). Requests are raw
 * because the generated client encodes the node-proxy path of the kubelet's checkpoint endpoint badly
 * and makes merge patches awkward; the objects are the client's own types.
 *
 * MS2M_KUBE_API overrides the API server's address: a pod on the host network of a cluster without
 * kube-proxy (the project's test cluster) cannot reach the `kubernetes` Service that in-cluster config names.
 */
import { request as httpsRequest, type RequestOptions } from 'node:https';
// The client is an ES module and this project CommonJS: its types come in by type, its code by import().
import type { KubeConfig } from '@kubernetes/client-node' with { 'resolution-mode': 'import' };

export class KubeError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface KubeApi {
  get<T>(path: string): Promise<T>;
  /** The object, or null when the API answers 404. */
  find<T>(path: string): Promise<T | null>;
  post<T>(path: string, body: unknown): Promise<T>;
  /** A JSON merge patch. */
  patch<T>(path: string, body: unknown): Promise<T>;
  /** Deletes; a missing object is not an error (returns false). */
  remove(path: string, body?: unknown): Promise<boolean>;
  /** The raw body of a text endpoint (logs). */
  text(path: string): Promise<string>;
  /** Where the API server is, for messages. */
  readonly server: string;
}

export async function loadKubeConfig(): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (process.env.KUBECONFIG) kc.loadFromFile(process.env.KUBECONFIG);
  else if (process.env.KUBERNETES_SERVICE_HOST || process.env.MS2M_KUBE_API) kc.loadFromCluster();
  else kc.loadFromDefault();
  const override = process.env.MS2M_KUBE_API;
  if (override) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('MS2M_KUBE_API is set but the kube config names no cluster');
    const clusters = kc.clusters.map((c) => (c.name === cluster.name ? { ...c, server: override } : c));
    kc.loadFromOptions({ clusters, users: kc.users, contexts: kc.contexts, currentContext: kc.currentContext });
  }
  return kc;
}

export async function kubeApi(given?: KubeConfig): Promise<KubeApi> {
  const kc = given ?? (await loadKubeConfig());
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('the kube config names no API server; set KUBECONFIG or run in a pod');
  const base = new URL(server);

  async function call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; text: string }> {
    const opts: RequestOptions = {
      method,
      hostname: base.hostname,
      port: base.port || 443,
      path: `${base.pathname.replace(/\/$/, '')}${path}`,
      headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': contentType } : {}) },
    };
    await kc.applyToHTTPSOptions(opts);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(opts, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      });
      req.on('error', (err) => reject(new Error(`the Kubernetes API at ${server} did not answer ${method} ${path}: ${err.message}`)));
      req.setTimeout(120_000, () => req.destroy(new Error('timed out after 120 s')));
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  async function json<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const r = await call(method, path, body, contentType);
    if (r.status >= 300) throw failure(method, path, r);
    return (r.text ? JSON.parse(r.text) : {}) as T;
  }

  return {
    server,
    get: (path) => json('GET', path),
    async find<T>(path: string) {
      const r = await call('GET', path);
      if (r.status === 404) return null;
      if (r.status >= 300) throw failure('GET', path, r);
      return JSON.parse(r.text) as T;
    },
    post: (path, body) => json('POST', path, body),
    patch: (path, body) => json('PATCH', path, body, 'application/merge-patch+json'),
    async remove(path, body) {
      const r = await call('DELETE', path, body);
      if (r.status === 404) return false;
      if (r.status >= 300) throw failure('DELETE', path, r);
      return true;
    },
    async text(path) {
      const r = await call('GET', path);
      if (r.status >= 300) throw failure('GET', path, r);
      return r.text;
    },
  };
}

function failure(method: string, path: string, r: { status: number; text: string }): KubeError {
  let reason = '';
  let message = r.text.slice(0, 500);
  try {
    const s = JSON.parse(r.text) as { reason?: string; message?: string };
    reason = s.reason ?? '';
    message = s.message ?? message;
  } catch {
    // Not a Status object (a kubelet's plain-text answer): its text is the message.
  }
  return new KubeError(r.status, reason, `${method} ${path}: HTTP ${r.status}${reason ? ` ${reason}` : ''}: ${message}`);
}

/** A path segment, escaped (names are DNS labels, but a bad input must not reach another path). */
export const seg = (s: string): string => encodeURIComponent(s);
