/**
 * What an instance publishes: the outputs of a message and, while shadowed, the message's apply-log entry.
 * Plain data, so the decisions about them (publish, suppress, owe, release) can be made without a broker.
 */
import { HEADER_LOG_INDEX, HEADER_LOG_ROUTING_KEY, HEADER_PRODUCER, HEADER_PUBLISHED_AT, HEADER_SEQ, type Stamp } from '../protocol';

/** Something to publish with confirms before the input it came from is acknowledged. */
export interface Outgoing {
  exchange: string;
  routingKey: string;
  content: Buffer;
  headers: Record<string, unknown>;
  /** `<producer>:<seq>:<n>` for an output: the same for every copy of it, so a consumer can drop a resend. */
  messageId?: string;
  /** An apply-log entry (sent to the replay queue, returned if that queue is gone) rather than an output. */
  log?: true;
}

/** A message as it came off a queue, before the core reads its stamp or log position. */
export interface RawMessage {
  content: Buffer;
  routingKey: string;
  headers: Record<string, unknown>;
  messageId?: string;
}

/** The `n`-th output (from 0) of the message stamped `stamp`, computed by instance `instance`. */
export function outputOf(exchange: string, routingKey: string, body: unknown, stamp: Stamp | undefined, instance: string, n: number): Outgoing {
  return {
    exchange,
    routingKey,
    messageId: stamp ? `${stamp.producer}:${stamp.seq}:${n}` : undefined,
    content: Buffer.from(JSON.stringify(body)),
    headers: {
      ...(stamp ? { [HEADER_PRODUCER]: stamp.producer, [HEADER_SEQ]: stamp.seq } : {}),
      ...(stamp?.publishedAt ? { [HEADER_PUBLISHED_AT]: stamp.publishedAt } : {}),
      'x-ms2m-instance': instance,
    },
  };
}

/** The apply-log entry of a message the source applied as its `index`-th: the message itself plus its position. */
export function logEntryOf(queue: string, msg: RawMessage, index: number): Outgoing {
  return {
    exchange: '',
    routingKey: queue,
    content: msg.content,
    messageId: msg.messageId,
    headers: { ...msg.headers, [HEADER_LOG_INDEX]: index, [HEADER_LOG_ROUTING_KEY]: msg.routingKey },
    log: true,
  };
}

export const owedKey = (producer: string, seq: number) => `${producer}#${seq}`;

/** The input an output answers, if it says (an output of an unstamped message cannot be owed). */
export function answers(o: Outgoing): string | undefined {
  const producer = o.headers[HEADER_PRODUCER];
  const seq = o.headers[HEADER_SEQ];
  return typeof producer === 'string' && typeof seq === 'number' ? owedKey(producer, seq) : undefined;
}
