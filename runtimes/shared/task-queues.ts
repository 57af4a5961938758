/** Each node's agent polls its own task queue, named after the orchestrator's; the cluster side of every runtime names it so. */
export const nodeTaskQueue = (orchestratorQueue: string, node: string): string => `${orchestratorQueue}-node-${node}`;
