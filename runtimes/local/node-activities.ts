/**
 * Node activities of the local runtime: a service instance is a process in its own PID and UTS
 * namespaces, checkpoint and restore are CRIU, images travel over HTTP between agents. These run on the
 * node's own task queue, in the node agent, with the node's data directory.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { CheckpointResult, ImageRef, InstanceExit, InstanceHealth, InstanceRecord, NodeActivities, NodeDescription } from '../types';
import { askPageStream, COMPLETE_MARK, imageFiles, sendImage, stagingDir, type Extent } from '../shared/image-transfer';
import { eagerExtents, lazyBytes, pagesFile, readPagemaps } from './criu-pagemap';
import { serveLazyPages, type LazyPageServer } from './lazy-page-server';
import type { PageStreamReceiver } from './page-stream-receiver';
import { lazyOutcome, recordLazyCopy, startLazyDaemon, stopLazyDaemon } from './lazy-restore';
import { criuTlsArgs, type TlsFiles } from './pki';
import { InstanceRegistry, type StoredInstance } from './instance-registry';
import { tailLines, watchExit } from './instance-exit';
import { catchesSignal, childrenOf, isAlive, procStat, rssBytes, USER_HZ, waitFor } from './proc';
import { criu, earlierCriu, frozenMs, holdDumpScript, mechanismSupport, pagesWritten } from './criu';
import { checkSpec, serviceEnv } from './service-spec';
import { failpoint } from '../../lib/failpoints';
import { instanceExitedMessage } from '../../lib/deploy-refusals';
import { FAILURE } from '../../lib/contracts';

const run = promisify(execFile);

export interface LocalNode {
  node: string;
  dataDir: string;
  criu: string;
  imageUrl: string;
  /** The address other agents reach this one at (its page streams and lazy page servers listen there). */
  host: string;
  /** This agent's key and certificate, from the cluster's CA. */
  tls: TlsFiles;
  /** The page streams this agent receives, by image id (the image receiver asks them at commit). */
  pageStreams: Map<string, PageStreamReceiver>;
  /** Where another node receives images and keeps them, from the cluster store (its agent registered it). */
  peer(node: string): { imageUrl: string; dataDir: string } | null;
  log(line: string): void;
}

/**
 * Gives a restored (still stopped) copy its identity and lets it run. Safe to repeat: the hostname is the
 * same and SIGCONT does nothing to a running process. Not conditional on the process state, which right
 * after `criu restore --leave-stopped` may read as a tracing stop ('t') rather than 'T'.
 */
async function resume(instanceId: string, pid: number): Promise<void> {
  try {
    // The copy learns who it is before it runs a single instruction.
    await run('nsenter', ['--uts', '--target', String(pid), 'hostname', instanceId]);
    process.kill(pid, 'SIGCONT');
  } catch (err) {
    process.kill(pid, 'SIGKILL');
    throw err;
  }
}

function readlinkSafe(p: string): string {
  try {
    return readlinkSync(p);
  } catch {
    return '';
  }
}

/** SIGTERM's bit in /proc/<pid>/status SigCgt. */
const SIGTERM = 15;
/** How long a dead instance's exit may take to reach its agent: unshare reaps the instance, then exits itself. */
const EXIT_REPORT_MS = 2000;
const LOG_LINES = 20;

function dirBytes(dir: string): { bytes: number; files: number } {
  const files = imageFiles(dir);
  return { bytes: files.reduce((a, f) => a + statSync(path.join(dir, f)).size, 0), files: files.length };
}

export function createLocalNodeActivities(node: LocalNode): NodeActivities {
  const registry = new InstanceRegistry(node.dataDir);
  const imagesDir = path.join(node.dataDir, 'images');
  const logsDir = path.join(node.dataDir, 'logs');
  mkdirSync(imagesDir, { recursive: true });
  mkdirSync(logsDir, { recursive: true });

  const publicRecord = (r: StoredInstance): InstanceRecord => ({
    instanceId: r.instanceId,
    service: r.service,
    node: r.node,
    startedAt: r.startedAt,
    origin: r.origin,
    details: { pid: r.pid, log: r.logPath },
  });
  const imageDir = (image: ImageRef): string => {
    // Image ids come from migration ids; anything else would be a path outside the images directory.
    if (image.node !== node.node || !/^[a-z0-9-]+$/.test(image.id)) {
      throw ApplicationFailure.nonRetryable(`image ${image.id} is held by ${image.node}, not by ${node.node}`, FAILURE.ImageMissing);
    }
    return path.join(imagesDir, image.id);
  };

  /** Records a process we started or restored, with its /proc start time against PID reuse. */
  function track(instanceId: string, service: string, pid: number, origin: InstanceRecord['origin'], logPath: string): StoredInstance {
    const st = procStat(pid);
    if (!st) throw new Error(`${instanceId} (pid ${pid}) exited at once; see ${logPath || 'its log'}`);
    const rec: StoredInstance = { instanceId, service, node: node.node, pid, startedAt: Date.now(), origin, logPath, procStartTime: st.startTime };
    registry.put(rec);
    return rec;
  }

  /** Exits of the instances this agent process started (it is their parent); lost with the agent. */
  const exits = new Map<string, Promise<InstanceExit>>();

  function healthOf(instanceId: string, logPath: string, startedAt: number, rec: StoredInstance | null, exit: InstanceExit | null, logLines = LOG_LINES): InstanceHealth {
    const alive = rec !== null && registry.alive(rec);
    let exitUnknown: string | undefined;
    if (!alive && !exit) {
      if (rec?.origin === 'restored') exitUnknown = 'it was restored by CRIU, so no node agent is its parent';
      else if (exits.has(instanceId)) exitUnknown = `its exit had not reached the node agent ${EXIT_REPORT_MS} ms after it was gone`;
      else exitUnknown = `the node agent of ${node.node} restarted since it started the instance`;
    }
    return { instanceId, node: node.node, startedAt, alive, exit: alive ? null : exit, exitUnknown, logs: logPath || '(no log file)', logTail: tailLines(logPath, logLines) };
  }

  function liveInstance(instanceId: string): StoredInstance | null {
    const rec = registry.get(instanceId);
    return rec && registry.alive(rec) ? rec : null;
  }

  const support = mechanismSupport(node.criu);
  // Asked once: describeNode is on the path of every migration's validation.
  const criuVersion = run(node.criu, ['--version']).catch(() => ({ stdout: 'unavailable' }));
  /** The lazy page servers of images this node checkpointed, while the image is kept. */
  const lazyServers = new Map<string, Promise<LazyPageServer>>();

  /** Serves the pages of a checkpointed image to a lazy restore elsewhere (one server per image, kept until the image is removed). */
  function lazyServer(imageId: string, dir: string): Promise<LazyPageServer> {
    let s = lazyServers.get(imageId);
    if (!s) {
      s = serveLazyPages(dir, { node: node.node, host: node.host, tls: node.tls, log: node.log });
      s.catch(() => lazyServers.delete(imageId));
      lazyServers.set(imageId, s);
    }
    return s;
  }

  return {
    async describeNode(): Promise<NodeDescription> {
      const [{ stdout }, s] = await Promise.all([criuVersion, support]);
      return {
        node: node.node,
        runtime: 'local',
        details: { images: node.imageUrl, criu: stdout.trim().split('\n')[0], dataDir: node.dataDir, dirtyTracking: s.dirtyTracking },
        ...(Object.keys(s.unsupported).length ? { unsupported: s.unsupported } : {}),
      };
    },

    async startInstance({ service, instanceId, spec }) {
      const existing = liveInstance(instanceId);
      if (existing) return publicRecord(existing);
      if (spec.runtime !== 'local') {
        throw ApplicationFailure.nonRetryable(`spec.runtime: node ${node.node} runs the local runtime, but the spec is for ${spec.runtime}; deploy it to a cluster of that runtime or give a local spec (command, env, cwd)`, FAILURE.InvalidSpec);
      }
      checkSpec(spec, node.node);
      const logPath = path.join(logsDir, `${instanceId}.log`);
      // O_APPEND|O_WRONLY: CRIU skips the size check for such files, so a copy restores while the source still writes.
      const fd = openSync(logPath, 'a');
      // The session leader must be inside the PID namespace for CRIU to dump the tree; the hostname is the
      // instance's identity, set before the service starts.
      const t0 = Date.now();
      const child = spawn(
        'unshare',
        ['--pid', '--uts', '--fork', '--', 'setsid', 'sh', '-c', 'hostname "$0" && exec "$@"', instanceId, ...spec.command],
        { detached: true, stdio: ['ignore', fd, fd], cwd: spec.cwd, env: serviceEnv(spec.env) },
      );
      closeSync(fd);
      child.unref();
      const exit = watchExit(child, logPath);
      let exited: InstanceExit | null = null;
      void exit.then((e) => (exited = e));
      const pid = await waitFor(() => (exited ? -1 : childrenOf(child.pid ?? 0)[0]), 5000, `the namespace init of ${instanceId}`);
      const st = pid > 0 ? procStat(pid) : null;
      if (!st) {
        // Gone before it could be tracked: refuse now, with what it said, rather than as a process that never answers.
        const e = await exit;
        throw ApplicationFailure.nonRetryable(instanceExitedMessage(healthOf(instanceId, logPath, t0, null, e)), FAILURE.InstanceExited);
      }
      const rec = track(instanceId, service, pid, 'started', logPath);
      exits.set(instanceId, exit);
      void exit.then((e) => {
        // The same process, not a later instance under the same id (startInstance retried after it died).
        if (registry.get(instanceId)?.procStartTime === rec.procStartTime) registry.update(instanceId, { exit: e });
      });
      return publicRecord(rec);
    },

    async checkpoint({ instanceId, imageId, streamTo }): Promise<CheckpointResult> {
      const dir = imageDir({ node: node.node, id: imageId, locator: '' });
      const resultFile = path.join(dir, 'result.json');
      if (existsSync(path.join(dir, COMPLETE_MARK)) && existsSync(resultFile)) {
        return JSON.parse(readFileSync(resultFile, 'utf8')) as CheckpointResult;
      }
      const rec = liveInstance(instanceId);
      // The dump never ends the instance, so a retry finds it alive unless it died by itself.
      if (!rec) throw ApplicationFailure.nonRetryable(`instance ${instanceId} is not running on ${node.node}`, FAILURE.InstanceNotFound);
      await earlierCriu(path.join(dir, 'criu.pid'));
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const args = ['dump', '-t', String(rec.pid), '-D', dir, '--leave-running', '--tcp-established', '--network-lock', 'skip', '--display-stats', '-o', 'dump.log', '-v2'];
      if (streamTo) {
        // The pages go to the target's page stream as they are dumped; only the rest is written here. Asked
        // at every attempt: a target agent restarted since has a stream of its own.
        const peer = node.peer(streamTo);
        if (!peer) throw ApplicationFailure.nonRetryable(`targetNode: there is no node "${streamTo}"; start its agent (ms2m agent --node ${streamTo})`, FAILURE.InvalidInput);
        const m = /^(.+):(\d+)$/.exec(await askPageStream(peer.imageUrl, imageId));
        if (!m) throw new Error(`${streamTo} gave no host:port for the page stream of ${imageId}`);
        args.push('--page-server', '--address', m[1], '--port', m[2], ...criuTlsArgs(node.tls));
      }
      const hold = holdDumpScript(node.dataDir, `${node.node}/criu-dump`);
      if (hold) args.push('--action-script', hold);
      const out = await criu(node.criu, args, dir, (pid) => writeFileSync(path.join(dir, 'criu.pid'), `${pid} ${procStat(pid)?.startTime ?? 0}`));
      await failpoint(`${node.node}/checkpoint-dumped`);
      const local = dirBytes(dir);
      // CRIU counts what it dumped; with a stream, the pages are not here to count.
      const streamedBytes = streamTo ? pagesWritten(out.output) * 4096 : 0;
      const result: CheckpointResult = {
        image: { node: node.node, id: imageId, locator: dir, ...(streamTo ? { streamedTo: streamTo } : {}) },
        bytes: local.bytes + streamedBytes,
        files: local.files,
        dumpMs: out.ms,
        freezeMs: frozenMs(out.output, out.ms),
        ...(streamTo ? { streamedBytes } : {}),
      };
      writeFileSync(resultFile, JSON.stringify(result));
      writeFileSync(path.join(dir, COMPLETE_MARK), '');
      return result;
    },

    async transfer({ image, targetNode, lazy }) {
      const dir = imageDir(image);
      if (!existsSync(path.join(dir, COMPLETE_MARK))) {
        throw ApplicationFailure.nonRetryable(`image ${image.id} is not complete on ${node.node}`, FAILURE.ImageMissing);
      }
      const peer = node.peer(targetNode);
      if (!peer) throw ApplicationFailure.nonRetryable(`targetNode: there is no node "${targetNode}"; start its agent (ms2m agent --node ${targetNode})`, FAILURE.InvalidInput);
      const t0 = performance.now();
      const streamed = image.streamedTo !== undefined;
      // Lazy from this node: the pages file travels sparse, only the pages the restore reads itself; this
      // node serves the others until the image is removed. (Streamed pages are on the target already.)
      let sparse: Map<string, Extent[]> | undefined;
      let pageSource: string | undefined;
      let left = 0;
      if (lazy && !streamed) {
        const maps = readPagemaps(dir);
        sparse = new Map(maps.map((pm) => [pagesFile(pm), eagerExtents(pm)]));
        left = maps.reduce((a, pm) => a + lazyBytes(pm), 0);
        pageSource = `${node.host}:${(await lazyServer(image.id, dir)).port}`;
      }
      let sent = 0;
      const r = await sendImage(
        dir,
        peer.imageUrl,
        image.id,
        (_name, bytes) => {
          sent += bytes;
          Context.current().heartbeat({ sent, targetNode });
        },
        { sparse, ...(streamed ? { pageStream: { files: [] } } : {}) },
      );
      return {
        ...r,
        image: { node: targetNode, id: image.id, locator: path.join(peer.dataDir, 'images', image.id), ...(pageSource ? { pageSource } : {}), ...(streamed ? { streamedTo: targetNode } : {}) },
        ms: performance.now() - t0,
        ...(lazy ? { lazyBytes: left } : {}),
      };
    },

    async restore({ image, service, instanceId, lazy }) {
      const existing = liveInstance(instanceId);
      if (existing) {
        // A retry after the agent died mid-restore: the copy exists, maybe still stopped.
        await resume(instanceId, existing.pid);
        return { instance: publicRecord(existing), restoreMs: 0 };
      }
      const dir = imageDir(image);
      if (!existsSync(path.join(dir, COMPLETE_MARK))) {
        throw ApplicationFailure.nonRetryable(`image ${image.id} has not arrived complete on ${node.node}`, FAILURE.ImageMissing);
      }
      const pidFile = path.join(dir, `restore-${instanceId}.pid`);
      rmSync(pidFile, { force: true });
      const t0 = performance.now();
      if (lazy) await startLazyDaemon({ criu: node.criu, dir, instanceId, pageSource: image.pageSource, tls: node.tls });
      // Restored stopped, in a new PID namespace, with its broker socket closed: it reconnects once it runs.
      let criuPid = 0;
      let watch: ReturnType<typeof setInterval> | undefined;
      let lazyFailed: string | null = null;
      if (lazy) {
        // The restore itself touches some lazy pages (the threads' stacks): if the daemon cannot get them,
        // CRIU waits for ever. Its failure ends the restore instead.
        watch = setInterval(() => {
          const o = lazyOutcome(dir, instanceId);
          if (o && !o.ok && criuPid) {
            lazyFailed = o.why;
            try {
              process.kill(-criuPid, 'SIGKILL');
            } catch {
              // ended meanwhile
            }
          }
        }, 50);
      }
      try {
        await criu(node.criu, ['restore', '-D', dir, '-d', '--tcp-close', '--leave-stopped', '--pidfile', pidFile, '-o', `restore-${instanceId}.log`, '-v2', ...(lazy ? ['--lazy-pages'] : [])], dir, (p) => (criuPid = p));
      } catch (err) {
        if (lazy) stopLazyDaemon(dir, instanceId);
        if (lazyFailed) throw ApplicationFailure.nonRetryable(`the lazy restore of ${instanceId} on ${node.node} could not fetch the pages its restore needs: ${lazyFailed}`, FAILURE.LazyPagesFailed);
        throw err;
      } finally {
        clearInterval(watch);
      }
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      if (lazy) recordLazyCopy(dir, instanceId, pid);
      // Recorded before it runs, so that whoever retries this finds it instead of restoring a second copy.
      // The copy keeps writing to the file its stdout had in the checkpoint.
      const rec = track(instanceId, service, pid, 'restored', readlinkSafe(`/proc/${pid}/fd/1`));
      await failpoint(`${node.node}/restore-stopped`);
      await resume(instanceId, pid);
      return { instance: publicRecord(rec), restoreMs: performance.now() - t0 };
    },

    async stopInstance({ instanceId }) {
      const rec = registry.get(instanceId);
      if (!rec || !registry.alive(rec)) {
        if (rec && !rec.stoppedAt) registry.update(instanceId, { stoppedAt: Date.now() });
        return { stopped: false };
      }
      const gone = () => !isAlive(rec.pid, rec.procStartTime);
      // A namespace's init ignores SIGTERM unless it handles it: waiting for it to act on one would be for nothing.
      if (catchesSignal(rec.pid, SIGTERM)) {
        process.kill(rec.pid, 'SIGTERM');
        for (let i = 0; i < 1000 && !gone(); i++) await sleep(5);
      }
      if (!gone()) {
        process.kill(rec.pid, 'SIGKILL');
        await waitFor(gone, 5000, `${instanceId} to die`);
      }
      registry.update(instanceId, { stoppedAt: Date.now() });
      return { stopped: true };
    },

    async awaitPages({ image, instanceId }) {
      const dir = imageDir(image);
      for (;;) {
        const o = lazyOutcome(dir, instanceId);
        // The pages the daemon had to move: the image's lazy ones (its log says so only at debug level).
        if (o?.ok) return { ms: o.ms, pages: readPagemaps(dir).reduce((a, pm) => a + lazyBytes(pm) / 4096, 0) };
        if (o) throw ApplicationFailure.nonRetryable(`the lazy restore of ${instanceId} on ${node.node} could not fetch every page, so the copy was killed: ${o.why}`, FAILURE.LazyPagesFailed);
        Context.current().heartbeat({ awaiting: 'pages' });
        await sleep(20);
      }
    },

    async removeImage({ imageId }) {
      const dir = imageDir({ node: node.node, id: imageId, locator: '' });
      // After the copy is stopped (rollback) or has all its pages (finalize): a daemon still there is a leftover.
      for (const f of existsSync(dir) ? readdirSync(dir) : []) {
        const m = /^lazy-(.+)\.daemon\.pid$/.exec(f);
        if (m) stopLazyDaemon(dir, m[1]);
      }
      const served = lazyServers.get(imageId);
      lazyServers.delete(imageId);
      if (served) (await served.catch(() => null))?.close();
      node.pageStreams.get(imageId)?.close();
      node.pageStreams.delete(imageId);
      rmSync(dir, { recursive: true, force: true });
      rmSync(stagingDir(imagesDir, imageId), { recursive: true, force: true });
    },

    async instanceLoads({ sampleMs }) {
      const live = registry.all().filter((r) => registry.alive(r));
      const before = new Map(live.map((r) => [r.instanceId, procStat(r.pid)?.cpuTicks ?? 0]));
      const t0 = performance.now();
      await sleep(sampleMs);
      const seconds = (performance.now() - t0) / 1000;
      return live
        .filter((r) => registry.alive(r))
        .map((r) => ({
          instanceId: r.instanceId,
          service: r.service,
          cpuPercent: (((procStat(r.pid)?.cpuTicks ?? 0) - (before.get(r.instanceId) ?? 0)) / USER_HZ / seconds) * 100,
          rssBytes: rssBytes(r.pid),
        }));
    },

    async listInstances() {
      return registry.all().map((r) => ({ ...publicRecord(r), alive: registry.alive(r) }));
    },

    async instanceHealth({ instanceId, logLines }) {
      const rec = registry.get(instanceId);
      if (!rec) throw ApplicationFailure.nonRetryable(`there is no instance ${instanceId} on ${node.node}`, FAILURE.InstanceNotFound);
      let exit = rec.exit ?? null;
      const watched = exits.get(instanceId);
      if (!registry.alive(rec) && !exit && watched) {
        // Dead, but its exit may still be on its way from unshare.
        exit = await Promise.race([watched, sleep(EXIT_REPORT_MS).then(() => null)]);
      }
      return healthOf(instanceId, rec.logPath, rec.startedAt, rec, exit, logLines);
    },
  };
}
