/** The custom search attributes a migration sets; `infra/stack.sh` registers them with the server. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const SA_SERVICE = defineSearchAttributeKey('Ms2mService', SearchAttributeType.KEYWORD);
export const SA_SOURCE_NODE = defineSearchAttributeKey('Ms2mSourceNode', SearchAttributeType.KEYWORD);
export const SA_TARGET_NODE = defineSearchAttributeKey('Ms2mTargetNode', SearchAttributeType.KEYWORD);
export const SA_STRATEGY = defineSearchAttributeKey('Ms2mStrategy', SearchAttributeType.KEYWORD);
export const SA_PHASE = defineSearchAttributeKey('Ms2mPhase', SearchAttributeType.KEYWORD);
