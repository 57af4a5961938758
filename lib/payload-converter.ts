/**
 * The payload converter of ms2m's workers and clients: the SDK's default, except that a JSON payload that
 * does not parse (malformed JSON pasted into the Web UI's input box, say) becomes a marker value instead
 * of an exception. An exception there fails the workflow task, which Temporal retries forever, and the
 * operator sees a workflow stuck in its first task; the marker lets the workflow refuse the input with a
 * clear error. Imported by the workflow sandbox: no Node APIs.
 */
import {
  BinaryPayloadConverter,
  CompositePayloadConverter,
  JsonPayloadConverter,
  UndefinedPayloadConverter,
  type Payload,
} from '@temporalio/common';

const MALFORMED = '__ms2mMalformedJson';

class LenientJsonPayloadConverter extends JsonPayloadConverter {
  override fromPayload<T>(payload: Payload): T {
    try {
      return super.fromPayload<T>(payload);
    } catch (err) {
      const bytes = payload.data ?? new Uint8Array();
      let text = '';
      for (let i = 0; i < Math.min(bytes.length, 80); i++) text += String.fromCharCode(bytes[i]);
      return { [MALFORMED]: { error: (err as Error).message, start: text } } as T;
    }
  }
}

export const payloadConverter = new CompositePayloadConverter(
  new UndefinedPayloadConverter(),
  new BinaryPayloadConverter(),
  new LenientJsonPayloadConverter(),
);

/** The refusal for an argument that arrived as malformed JSON, or null if it parsed. */
export function malformedPayloadError(arg: unknown): string | null {
  const m = arg && typeof arg === 'object' ? (arg as Record<string, { error: string; start: string }>)[MALFORMED] : undefined;
  if (!m) return null;
  return (
    `(input): not valid JSON (${m.error}) in ${JSON.stringify(m.start)}; ` +
    'paste one JSON object, e.g. {"service": "game", "targetNode": "node-b", "strategy": "shadow"}'
  );
}
