/**
 * The registry transfer mode: where a cluster has an OCI registry its nodes pull from, the source's agent
 * pushes the checkpoint image there (the OCI distribution API: blobs, then the manifest with the
 * checkpoint annotation) and the target's kubelet pulls it when the copy's pod starts; no agent-to-agent
 * connection is needed. The archive is streamed from the agent's disk, once.
 */
import { createReadStream } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { checkpointManifest, sha256Hex } from './checkpoint-image';

export interface Registry {
  /** host[:port] as the nodes pull from it, e.g. `localhost:30500` or `registry.example`. */
  host: string;
  /** Plain HTTP (a test cluster's registry on loopback). */
  insecure: boolean;
  /** `user:password` for basic authentication, if the registry wants it. */
  auth?: string;
}

export const REPOSITORY = 'ms2m-checkpoint';

export const registryRef = (r: Registry, tag: string): string => `${r.host}/${REPOSITORY}:${tag}`;

function send(r: Registry, method: string, url: string, o: { headers?: Record<string, string>; body?: Buffer; file?: string; size?: number } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  const u = new URL(url, `${r.insecure ? 'http' : 'https'}://${r.host}`);
  const headers: Record<string, string> = { ...o.headers };
  if (r.auth) headers.authorization = `Basic ${Buffer.from(r.auth).toString('base64')}`;
  if (o.body) headers['content-length'] = String(o.body.length);
  if (o.size !== undefined) headers['content-length'] = String(o.size);
  return new Promise((resolve, reject) => {
    const req = (u.protocol === 'http:' ? httpRequest : httpsRequest)(u, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', (err) => reject(new Error(`the registry ${r.host} did not answer ${method} ${u.pathname}: ${err.message}`)));
    if (o.file) createReadStream(o.file, { highWaterMark: 1024 * 1024 }).on('error', reject).pipe(req);
    else req.end(o.body);
  });
}

async function pushBlob(r: Registry, digest: string, blob: { body?: Buffer; file?: string; size: number }): Promise<void> {
  const base = `/v2/${REPOSITORY}/blobs`;
  if ((await send(r, 'HEAD', `${base}/sha256:${digest}`)).status === 200) return;
  const start = await send(r, 'POST', `${base}/uploads/`);
  const location = start.headers.location;
  if (start.status !== 202 || typeof location !== 'string') throw new Error(`the registry ${r.host} refused an upload: HTTP ${start.status} ${start.text.slice(0, 300)}`);
  const url = new URL(location, `${r.insecure ? 'http' : 'https'}://${r.host}`);
  url.searchParams.set('digest', `sha256:${digest}`);
  const put = await send(r, 'PUT', url.toString(), { headers: { 'content-type': 'application/octet-stream' }, body: blob.body, file: blob.file, size: blob.size });
  if (put.status !== 201) throw new Error(`the registry ${r.host} did not take blob sha256:${digest}: HTTP ${put.status} ${put.text.slice(0, 300)}`);
}

/** Pushes the checkpoint image of `archive` as `<host>/ms2m-checkpoint:<tag>`; returns the ref and its size. Safe to repeat. */
export async function pushCheckpointImage(r: Registry, archive: string, container: string, tag: string): Promise<{ ref: string; bytes: number }> {
  const m = await checkpointManifest(archive, container);
  await pushBlob(r, sha256Hex(m.config), { body: m.config, size: m.config.length });
  await pushBlob(r, m.layerDigest, { file: archive, size: m.layerSize });
  const put = await send(r, 'PUT', `/v2/${REPOSITORY}/manifests/${tag}`, { headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: m.manifest });
  if (put.status !== 201) throw new Error(`the registry ${r.host} did not take the manifest of ${tag}: HTTP ${put.status} ${put.text.slice(0, 300)}`);
  return { ref: registryRef(r, tag), bytes: m.layerSize };
}

/** Deletes the image from the registry (its manifest; the registry's garbage collection frees the blobs). */
export async function deleteCheckpointImage(r: Registry, tag: string): Promise<void> {
  const head = await send(r, 'HEAD', `/v2/${REPOSITORY}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  const digest = head.headers['docker-content-digest'];
  if (head.status === 404 || typeof digest !== 'string') return;
  const del = await send(r, 'DELETE', `/v2/${REPOSITORY}/manifests/${digest}`);
  if (del.status !== 202 && del.status !== 404) throw new Error(`the registry ${r.host} did not delete ${tag}: HTTP ${del.status} ${del.text.slice(0, 300)}`);
}
