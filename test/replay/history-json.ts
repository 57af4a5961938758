/**
 * Workflow histories to and from the JSON that Temporal's tools write (proto3 JSON, as
 * `temporal workflow show --output json` prints it).
 *
 * Not @temporalio/common's historyToJSON / historyFromJSON: in this dependency tree both throw "type must
 * be a Type". npm keeps protobufjs 7 at the top of node_modules (for @grpc/proto-loader) and nests
 * protobufjs 8 separately under @temporalio/common, @temporalio/proto and @temporalio/worker; common's
 * protojson, from its own copy, does not recognise the message types @temporalio/proto built with another
 * copy. Here protojson is loaded from the copy @temporalio/proto itself resolves, so the two always match.
 */
import * as path from 'node:path';
import { temporal } from '@temporalio/proto';

type History = temporal.api.history.v1.IHistory;

interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
}

const protoDir = path.dirname(require.resolve('@temporalio/proto/package.json'));
// eslint-disable-next-line @typescript-eslint/no-require-imports
const protojson = require(require.resolve('protobufjs/ext/protojson', { paths: [protoDir] })) as ProtoJson;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { patchProtobufRoot } = require('@temporalio/proto/lib/patch-protobuf-root') as { patchProtobufRoot<T>(root: T): T & { lookupType(name: string): unknown } };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const historyType = patchProtobufRoot(require('@temporalio/proto')).lookupType('temporal.api.history.v1.History');

export function historyToJSON(history: History): string {
  return JSON.stringify(protojson.toJson(historyType, temporal.api.history.v1.History.fromObject(history)), null, 1);
}

export function historyFromJSON(json: string): History {
  const h = protojson.fromJson(historyType, JSON.parse(json), { ignoreUnknownFields: true }) as History | null;
  if (!h?.events?.length) throw new TypeError('not a workflow history (no events)');
  return h;
}
