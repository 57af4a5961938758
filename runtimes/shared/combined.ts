/**
 * A node agent's activities with the combined ones built from them (NodeAgentOptions.combine), each of
 * those behind its own failpoint too; the parts keep theirs, so a fault test that holds `checkpoint`
 * holds it inside `checkpointAndSend` as well.
 */
import { withFailpoints } from '../../lib/failpoints';
import type { NodeActivities, NodeAgentOptions } from '../types';

export function withCombined<T extends object>(node: string, activities: T, combine: NodeAgentOptions['combine']): T {
  return combine ? { ...activities, ...withFailpoints(node, combine(activities as unknown as NodeActivities)) } : activities;
}
