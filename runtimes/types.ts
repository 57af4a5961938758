/**
 * The runtime port: what a migration needs from the place services run, in the workflow's terms. A
 * runtime (local processes + CRIU, or Kubernetes) implements NodeActivities on each node's own task queue
 * and ClusterActivities on the orchestrator's; `Runtime` (runtimes/index.ts picks one) builds them.
 * Nothing here names a process id, a file, a URL or a tool version: a runtime reports such things in
 * `details`, for people to read, never for the workflow to act on.
 *
 * Contract of every runtime (test/contract/ checks it against each one):
 * - `checkpoint` never ends the instance. The source keeps running until the workflow stops it
 *   (`stopInstance`, after the handoff); a strategy that wants it idle meanwhile fences it through the
 *   control protocol first. So the only live copy of a state is never ended before its image exists.
 * - An image is known by the opaque `ImageRef` that `checkpoint` (on the source) and `transfer` (on the
 *   target) return; the workflow passes it along and never looks inside. Its id is the workflow's (from
 *   the migration id), so a node can also remove what it holds of an image that was never completed.
 * - Identity: a restored copy sees its new instance id (`instanceId` of `restore`) before it consumes or
 *   emits anything. The service library reads its identity from the runtime (local: the UTS hostname,
 *   set while the restored process is still stopped; Kubernetes: the new pod's name in a downward-API
 *   file, because a restored container keeps the old pod's hostname and environment) and a copy that
 *   finds an identity other than the one in its checkpoint knows it is a copy and waits as a standby.
 * - Every call may be retried after it succeeded, or after its worker died at any moment of it, with the
 *   same arguments, and then returns the same result (or, for stop/remove, does nothing more).
 */
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import type { RuntimeName } from './runtime-names';
import type { LocalSpec, ServiceSpec } from './spec';

export type { ServiceSpec, LocalSpec, KubernetesSpec } from './spec';
export { RUNTIMES, type RuntimeName } from './runtime-names';

/** How the harness runs an example on a runtime that has workload kinds (kubernetes; local has none). */
export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'Pod';
export interface WorkloadShape {
  /** Default: a Deployment. */
  kind?: WorkloadKind;
  /** Its pods opt in to migrating on eviction (label `ms2m.io/on-eviction: migrate`). */
  migrateOnEviction?: boolean;
}

/** Facts for people (a log location, a process id, a tool version), never read by the workflow. */
export type Details = Record<string, string | number>;

/**
 * The ways an image can move besides the baseline (dump to files, send them, restore them all), each an
 * option of a migration (`mechanisms` of its input):
 * - `stream`: the source's checkpoint sends its memory pages straight to the target while it dumps
 *   (CRIU's page server), so the source never writes them and nobody reads them back;
 * - `lazy`: post-copy; the copy starts with only the pages its restore needs and fetches the rest from
 *   the source's node as it touches them, while it replays.
 * Pre-copy (iterative pre-dumps) needs the kernel's soft-dirty page tracking; a node says in its
 * description's details whether its kernel has it (docs/design/pre-copy-and-post-copy.md).
 */
export const MECHANISMS = ['stream', 'lazy'] as const;
export type Mechanism = (typeof MECHANISMS)[number];

export interface NodeDescription {
  node: string;
  runtime: RuntimeName;
  details: Details;
  /** The mechanisms this node cannot take part in, each with why (what is missing, where). Absent: all supported. */
  unsupported?: Partial<Record<Mechanism, string>>;
}



export interface InstanceRecord {
  instanceId: string;
  service: string;
  node: string;
  startedAt: number;
  origin: 'started' | 'restored';
  details: Details;
}

/** How an instance's process ended: an exit code, or the signal that killed it. */
export interface InstanceExit {
  code: number | null;
  signal: string | null;
  at: number;
}

export interface InstanceHealth {
  instanceId: string;
  node: string;
  /** When the runtime started it (the node's clock, as `exit.at`). */
  startedAt: number;
  alive: boolean;
  /** Set once the instance has exited, if the runtime saw it end. */
  exit: InstanceExit | null;
  /** Why a dead instance has no `exit`. */
  exitUnknown?: string;
  /** Where its whole log is, said so that a person can read it (a file, a kubectl command). */
  logs: string;
  /** The last lines of its log (stdout and stderr), oldest first. */
  logTail: string[];
}

/** An image of one instance's state, as one node holds it. Opaque outside its runtime. */
export interface ImageRef {
  /** The node that holds it. */
  node: string;
  /** Derived from the migration id, so every retry names the same image. */
  id: string;
  /** Where the runtime keeps it (its own notation). */
  locator: string;
  /** Checkpointed with `stream`: the node whose page stream received its pages. */
  streamedTo?: string;
  /** Sent for a lazy restore: where the pages the target does not hold are served (the runtime's notation). */
  pageSource?: string;
}

export interface CheckpointResult {
  image: ImageRef;
  bytes: number;
  files: number;
  dumpMs: number;
  /** How long the source was frozen. */
  freezeMs: number;
  /** Of `bytes`, the pages that went straight to the target's page stream. */
  streamedBytes?: number;
}

export interface TransferResult {
  /** The image as the target node holds it, for `restore` there. */
  image: ImageRef;
  bytes: number;
  files: number;
  ms: number;
  /** Left on the source for a lazy restore to fetch on demand. */
  lazyBytes?: number;
}

export interface RestoreResult {
  instance: InstanceRecord;
  restoreMs: number;
}

/** A lazy restore's end: every page of the copy has arrived. */
export interface PagesResult {
  /** From the restore to the last page, by the target's clock. */
  ms: number;
  /** Pages the lazy-pages daemon moved into the copy. */
  pages: number;
}

export interface InstanceLoad {
  instanceId: string;
  service: string;
  /** Percent of one core over the sample. */
  cpuPercent: number;
  rssBytes: number;
}

export interface NodeActivities {
  describeNode(): Promise<NodeDescription>;
  /** Starts an instance of `spec`; refuses a spec of another runtime, or one that cannot run, with InvalidSpec. */
  startInstance(input: { service: string; instanceId: string; spec: ServiceSpec }): Promise<InstanceRecord>;
  /**
   * Dumps the instance into image `imageId` and leaves it running (see the contract above). With
   * `streamTo` (a node, by name: the runtime knows how to reach it), the memory pages go to that node as
   * they are dumped, and `transfer` to it then sends only the rest.
   */
  checkpoint(input: { instanceId: string; imageId: string; streamTo?: string }): Promise<CheckpointResult>;
  /**
   * Moves an image this node holds to `targetNode`; the runtime knows how to reach it (to this node
   * itself: nothing to move). `lazy`: only what a restore reads itself moves now; this node serves the
   * other pages on demand until the image is removed.
   */
  transfer(input: { image: ImageRef; targetNode: string; lazy?: boolean }): Promise<TransferResult>;
  /**
   * Starts a copy from an image this node holds (received, or checkpointed here), as `instanceId`,
   * visible under that identity before it runs. `instanceId` may be the checkpointed instance's own
   * name once that instance is stopped: it then resumes as itself (fenced as it was). `lazy`: the copy
   * runs before all its memory is in; its pages arrive as it touches them (`awaitPages` says when all have).
   */
  restore(input: { image: ImageRef; service: string; instanceId: string; lazy?: boolean }): Promise<RestoreResult>;
  /**
   * After a lazy restore: waits until every page of the copy has arrived. Fails with LazyPagesFailed,
   * the copy killed, if a page could not be fetched (the copy must never run on memory that is not its own).
   */
  awaitPages(input: { image: ImageRef; instanceId: string }): Promise<PagesResult>;
  stopInstance(input: { instanceId: string }): Promise<{ stopped: boolean }>;
  /** Removes whatever this node holds of image `imageId`, complete or partial (a transfer cut short). */
  removeImage(input: { imageId: string }): Promise<void>;
  listInstances(): Promise<Array<InstanceRecord & { alive: boolean }>>;
  /** Whether the instance lives, how it ended if it did, and the end of its log. */
  instanceHealth(input: { instanceId: string; logLines?: number }): Promise<InstanceHealth>;
  /** CPU and memory of the live instances, sampled over `sampleMs`. */
  instanceLoads(input: { sampleMs: number }): Promise<InstanceLoad[]>;
}

export interface NodeInfo {
  node: string;
  /** Where this node's agent takes its work. */
  taskQueue: string;
  capacity: number;
  schedulable: boolean;
}

export interface Placement {
  service: string;
  node: string;
  instanceId: string;
  spec: ServiceSpec;
  updatedAt: number;
  /**
   * Its controller knows the instance by name and would replace a missing one at once, with an empty
   * state (a StatefulSet's pod): it moves only by a strategy that ends with an instance of the same name
   * (sequential, shadow-swap), with the controller held while that name is free (`holdController`).
   */
  keepsName?: boolean;
}

export interface ClusterActivities {
  /** Refuses with ServiceNotFound when the service is not deployed. */
  locateService(input: { service: string }): Promise<Placement>;
  findPlacement(input: { service: string }): Promise<Placement | null>;
  commitPlacement(input: Placement): Promise<void>;
  removePlacement(input: { service: string }): Promise<void>;
  /** The node, or null if there is none of that name. */
  node(input: { node: string }): Promise<NodeInfo | null>;
  listNodes(): Promise<NodeInfo[]>;
  listPlacements(): Promise<Placement[]>;
  setNodeSchedulable(input: { node: string; schedulable: boolean }): Promise<void>;
  /**
   * For a placement that `keepsName`: takes its instance out of its controller's hands, so that the
   * instance may be stopped and its name given to the migrated one without the controller starting a
   * fresh instance meanwhile. `commitPlacement` of an instance of that name gives it back. Nothing for
   * other placements; safe to repeat.
   */
  holdController(input: { service: string }): Promise<void>;
}

/** How the harness (tests, benchmark, chaos, demo) drives a cluster of one runtime: its processes and its records. */
export interface ClusterHandle {
  readonly runtime: RuntimeName;
  readonly opts: ClusterOptions;
  readonly client: Client;
  /** Stops one worker ("orchestrator" or "agent-<node>") and waits for it to end; instances outlive it. */
  stopProcess(name: string, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a worker again. */
  launch(name: string): Promise<void>;
  /** Kills a worker outright and starts it again, as a crash and a supervisor's restart would. */
  crashAndRestart(name: string): Promise<void>;
  /** Live instances of a service on every node, from the runtime itself (not from its agents). */
  liveInstances(service: string): Promise<Array<{ instanceId: string; node: string }>>;
  /** Signals an instance from outside its runtime's agents (fault injection: a crash, a stall and its end). */
  signalInstance(instanceId: string, signal: 'SIGKILL' | 'SIGSTOP' | 'SIGCONT'): Promise<void>;
  placement(service: string): Promise<Placement | null>;
  /**
   * What a deploy of one of the project's example services needs in this runtime, from its local spec
   * (local: that spec; kubernetes: the spec of a workload of that shape, default a Deployment, that it
   * creates, running on `node`).
   */
  workloadSpec(service: string, spec: LocalSpec, node: string, shape?: WorkloadShape): Promise<ServiceSpec>;
  /** Removes what `workloadSpec` created (after an undeploy). */
  discardWorkload(service: string): Promise<void>;
  node(node: string): Promise<NodeInfo | null>;
  stop(): Promise<void>;
}

export interface ClusterOptions {
  nodes: string[];
  /** Where the cluster keeps its state and the workers' logs. */
  home: string;
  taskQueue: string;
  /** Extra environment per node agent, e.g. a different CRIU to inject a fault. */
  nodeEnv?: Record<string, Record<string, string>>;
  log?: (line: string) => void;
}

export interface NodeAgentOptions {
  node: string;
  capacity?: number;
  /** Where the agent receives images from other nodes (host:port); the runtime's default if absent. */
  listen?: string;
  /**
   * Activities every node serves whatever its runtime, beside the runtime's own: the handoff's replay and
   * fence, which run where the copy lives.
   */
  shared?: object;
  /**
   * More activities built from the node's others (runtime's and shared, each already behind its
   * failpoint): steps the workflow asks of one node at once (activities/node-combined).
   */
  combine?: (activities: NodeActivities) => object;
  /** Wraps the node's activities (runtime's and shared, behind their failpoints) before they are combined: the agent's metrics. */
  instrument?: <T extends object>(activities: T) => T;
  /** The worker's activity interceptors (log context, tracing). */
  interceptors?: { activity?: ActivityInterceptorsFactory[] };
}

/** One runtime: everything the orchestrator, the agents and the harness need from it. */
export interface Runtime {
  readonly name: RuntimeName;
  /** The orchestrator's cluster activities (a runtime may have a client to build first). */
  clusterActivities(): Promise<ClusterActivities>;
  /** Runs a node agent until it is told to stop (SIGTERM/SIGINT are the caller's to route to `stop`). */
  startNodeAgent(opts: NodeAgentOptions): Promise<{ taskQueue: string; run(): Promise<void>; stop(): void }>;
  /** Starts a cluster for the harness: an orchestrator and one agent per node. */
  startCluster(opts: ClusterOptions): Promise<ClusterHandle>;
  /** Ends what an earlier crashed run left behind under `home` (instances that would keep consuming). */
  reap(home: string): void;
  /**
   * What the runtime serves beside the orchestrator's worker, if anything (kubernetes: the eviction
   * webhook, when configured); `close` ends it.
   */
  serveBesideOrchestrator?(client: Client, taskQueue: string): Promise<{ close(): void } | null>;
}
