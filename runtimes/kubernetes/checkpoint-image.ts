/**
 * A kubelet checkpoint archive as a container image, loaded into the node's containerd: the archive is
 * the image's one layer, as is, and the manifest carries `org.criu.checkpoint.container.name`, which
 * containerd 2.1–2.3 read to restore the container from it instead of starting it fresh (the CRI
 * "restore via create" that containerd 2.4 removed). The archive names its base image
 * (`config.dump.rootfsImageRef`); that image must already be on the node, or containerd tries to pull it.
 *
 * The OCI archive is streamed into `ctr images import -`: the checkpoint is read twice (hash, then
 * copy) and never written again.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { pack } from 'tar-stream';

export const CHECKPOINT_ANNOTATION = 'org.criu.checkpoint.container.name';

export const checkpointImageName = (imageId: string): string => `localhost/ms2m-checkpoint:${imageId.toLowerCase().replace(/[^a-z0-9_.-]/g, '-').slice(0, 120)}`;

async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

const digestOf = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

export interface Ctr {
  /** The ctr binary. */
  bin: string;
  /** containerd's socket on this node. */
  socket: string;
}

function ctr(c: Ctr, args: string[], stdin?: (s: NodeJS.WritableStream) => Promise<void>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(c.bin, ['-a', c.socket, '-n', 'k8s.io', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new Error(`${c.bin}: ${e.message}`)));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`ctr ${args[0]} ${args[1] ?? ''} exited ${code}: ${err.trim().slice(-500)}`))));
    if (stdin) stdin(child.stdin).catch((e: Error) => child.kill() && reject(e));
    else child.stdin.end();
  });
}

export interface CheckpointManifest {
  layerDigest: string;
  layerSize: number;
  config: Buffer;
  manifest: Buffer;
}

/** The image's blobs besides the archive itself: its config and its manifest (which carries the annotation). */
export async function checkpointManifest(archive: string, container: string): Promise<CheckpointManifest> {
  const layerDigest = await sha256Of(archive);
  const layerSize = statSync(archive).size;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [`sha256:${layerDigest}`] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${digestOf(config)}`, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerDigest}`, size: layerSize }],
      annotations: { [CHECKPOINT_ANNOTATION]: container },
    }),
  );
  return { layerDigest, layerSize, config, manifest };
}

export const sha256Hex = digestOf;

/** Builds the checkpoint image of `archive` (a kubelet checkpoint tar of `container`) and imports it as `name`. */
export async function importCheckpointImage(c: Ctr, archive: string, container: string, name: string): Promise<{ ms: number; bytes: number }> {
  const started = Date.now();
  const { layerDigest, layerSize, config, manifest } = await checkpointManifest(archive, container);
  const annotations = { [CHECKPOINT_ANNOTATION]: container };
  // containerd reads the checkpoint annotation from the descriptor it imports, the manifest's, so it is on both.
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${digestOf(manifest)}`,
          size: manifest.length,
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: { ...annotations, 'io.containerd.image.name': name, 'org.opencontainers.image.ref.name': name.split(':').pop()! },
        },
      ],
    }),
  );
  await ctr(c, ['images', 'import', '-'], async (stdin) => {
    const tar = pack();
    const piped = pipeline(tar, stdin);
    const entry = (n: string, b: Buffer) => new Promise<void>((res, rej) => tar.entry({ name: n, mtime: new Date(0) }, b, (e) => (e ? rej(e) : res())));
    await entry('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
    await entry('index.json', index);
    await entry(`blobs/sha256/${digestOf(config)}`, config);
    await entry(`blobs/sha256/${digestOf(manifest)}`, manifest);
    await new Promise<void>((res, rej) => {
      const sink = tar.entry({ name: `blobs/sha256/${layerDigest}`, size: layerSize, mtime: new Date(0) }, (e) => (e ? rej(e) : res()));
      pipeline(createReadStream(archive, { highWaterMark: 1024 * 1024 }), sink).catch(rej);
    });
    tar.finalize();
    await piped;
  });
  return { ms: Date.now() - started, bytes: layerSize };
}

/** Removes the image's name from the node; containerd keeps the content while a container uses it. */
export async function removeCheckpointImage(c: Ctr, name: string): Promise<void> {
  await ctr(c, ['images', 'rm', name]).catch((err: Error) => {
    if (!/not found/i.test(err.message)) throw err;
  });
}
