/**
 * validate: changes nothing until the request is known to make sense (the placement, both nodes, the
 * mechanisms they can do, a source that serves and speaks the protocol), then takes the lock. Workflow code.
 */
import { ApplicationFailure, patched } from '@temporalio/workflow';
import { NAME_KEEPING } from '../lib/migration';
import { FAILURE } from '../lib/contracts';
import type { Mechanism, NodeDescription, NodeInfo, Placement } from '../runtimes/types';
import { isScheduleToStartTimeout } from './migration-failures';
import type { MigrationRun } from './migration-run';

async function describe<T = NodeDescription>(run: MigrationRun, node: NodeInfo, role: 'targetNode' | 'source node', ask: () => Promise<T> = () => run.onNode(node).describeNode() as Promise<T>): Promise<T> {
  try {
    return await ask();
  } catch (err) {
    if (!isScheduleToStartTimeout(err)) throw err;
    const what = role === 'targetNode' ? `targetNode: node "${node.node}"` : `the node of ${run.input.service} ("${node.node}")`;
    throw ApplicationFailure.nonRetryable(
      `${what} does not answer: no agent took work from its task queue ${node.taskQueue} within ${run.t.nodeScheduleToStartMs} ms; ` +
        `start its agent (ms2m agent --node ${node.node})${role === 'targetNode' ? ' or choose another node' : ''}`,
      FAILURE.NodeUnreachable,
    );
  }
}

/** The placement and both nodes as the runtime's cluster side describes them. */
export async function whereFromAndTo(run: MigrationRun): Promise<{ p: Placement; targetNode: NodeInfo | null; sourceNodeInfo: NodeInfo | null }> {
  // One round of local activities instead of two; migrations started before keep their two rounds.
  if (patched('validate-one-node-lookup')) {
    const [p, nodes] = await Promise.all([run.cluster.locateService({ service: run.input.service }), run.cluster.listNodes()]);
    const find = (name: string) => nodes.find((n) => n.node === name) ?? null;
    return { p, targetNode: find(run.input.targetNode), sourceNodeInfo: find(p.node) };
  }
  const [p, targetNode] = await Promise.all([run.cluster.locateService({ service: run.input.service }), run.cluster.node({ node: run.input.targetNode })]);
  return { p, targetNode, sourceNodeInfo: await run.cluster.node({ node: p.node }) };
}

/** Changes nothing until the request is known to make sense; takes the lock. */
export async function validate(run: MigrationRun): Promise<void> {
  const { p, targetNode, sourceNodeInfo } = await whereFromAndTo(run);
  if (p.node === run.input.targetNode) {
    throw ApplicationFailure.nonRetryable(`targetNode: ${run.input.service} already runs on ${p.node}; choose another node`, FAILURE.InvalidInput);
  }
  const keepingName = NAME_KEEPING.includes(run.input.strategy);
  if (p.keepsName && !keepingName) {
    throw ApplicationFailure.nonRetryable(
      `strategy: ${run.input.service} runs as ${p.instanceId}, a pod its StatefulSet knows by name; migrate it with strategy ${NAME_KEEPING.join(' or ')}`,
      FAILURE.InvalidInput,
    );
  }
  if (!p.keepsName && keepingName) {
    throw ApplicationFailure.nonRetryable(`strategy: ${run.input.strategy} moves a StatefulSet's pod, and ${run.input.service} is not one; use shadow or stop-and-copy`, FAILURE.InvalidInput);
  }
  if (!targetNode) {
    throw ApplicationFailure.nonRetryable(`targetNode: there is no node "${run.input.targetNode}"; start its agent (ms2m agent --node ${run.input.targetNode})`, FAILURE.InvalidInput);
  }
  if (!sourceNodeInfo) {
    throw ApplicationFailure.nonRetryable(`${run.input.service} is placed on "${p.node}", which is not a node any more; start its agent (ms2m agent --node ${p.node})`, FAILURE.NodeUnreachable);
  }
  run.sourceAt = sourceNodeInfo;
  run.originAt = sourceNodeInfo;
  run.targetAt = targetNode;
  run.view.sourceIs(p.node);
  run.report.sourceNode = p.node;
  run.report.sourceInstance = p.instanceId;
  run.sourceInstance = p.instanceId;
  // sequential moves the instance itself: it resumes on the target under its own name.
  if (run.input.strategy === 'sequential') run.report.targetInstance = run.copyId = p.instanceId;
  await run.lock.acquireLock({ service: run.input.service, workflowId: run.info.workflowId, runId: run.info.runId });
  run.locked = true;
  // Both agents must answer on their queues (a dead node times out on schedule-to-start), and the
  // service must speak the protocol with ids on its messages.
  const [fromNode, toNode, status] = run.combined
    ? await Promise.all([
        // The source's agent describes its node and probes the instance beside it, in parallel with the target.
        describe(run, run.sourceAt, 'source node', () => run.onNode(run.sourceAt!).describeAndProbe({ service: run.input.service, instanceId: p.instanceId, timeoutMs: run.t.controlReplyMs })),
        describe(run, run.targetAt, 'targetNode'),
      ]).then(([s, d]) => [s.node, d, s.status] as const)
    : await Promise.all([
        describe(run, run.sourceAt, 'source node'),
        describe(run, run.targetAt, 'targetNode'),
        run.brokerLocal.probeService({ service: run.input.service, instanceId: p.instanceId, timeoutMs: run.t.controlReplyMs }),
      ]);
  refuseUnsupported(run, [fromNode, toNode]);
  if (status.role !== 'primary' || status.fenced) {
    throw ApplicationFailure.nonRetryable(`instance ${p.instanceId} is not serving (role ${status.role}, fenced ${status.fenced})`, FAILURE.SourceNotServing);
  }
  if (status.input.queue !== p.spec.primaryQueue) {
    throw ApplicationFailure.nonRetryable(
      `spec.primaryQueue: ${run.input.service} was deployed with "${p.spec.primaryQueue}" but its instance consumes "${status.input.queue}"; redeploy it with spec.primaryQueue "${status.input.queue}"`,
      FAILURE.InvalidSpec,
    );
  }
  run.sourceAtStart = status;
  run.fencing.epoch = status.epoch + 1;
  run.placement = p;
  run.source = run.onNode(sourceNodeInfo);
  run.target = run.onNode(targetNode);
  run.handoff = run.handoffOn(targetNode);
}

/** Both nodes must be able to do the mechanisms the input asks for; refused before anything changes. */
export function refuseUnsupported(run: MigrationRun, nodes: NodeDescription[]): void {
  const asked: Array<[Mechanism, string]> = [];
  if (run.transferMode === 'stream') asked.push(['stream', 'mechanisms.transfer: "stream"']);
  if (run.lazy) asked.push(['lazy', 'mechanisms.lazy: true']);
  for (const [m, field] of asked) {
    const no = nodes.find((n) => n.unsupported?.[m]);
    if (no) throw ApplicationFailure.nonRetryable(`${field} is not possible on node "${no.node}": ${no.unsupported![m]}`, FAILURE.InvalidInput);
  }
}
