/**
 * What a service gives the library: its topology and its state transition.
 */
import type { InputMessage } from './core';

export interface ApplyContext {
  /** Queue an output; it is published (or suppressed on a copy) after apply returns. */
  emit(routingKey: string, body: unknown): void;
}

export interface ServiceOptions<S> {
  service: string;
  amqpUrl: string;
  input: { exchange: string; exchangeType?: 'topic' | 'direct' | 'fanout'; queue: string; bindings?: string[] };
  output?: { exchange: string; exchangeType?: 'topic' | 'direct' | 'fanout' };
  /** Deliveries in hand at a time (default 2); the fence waits for the source to apply them all. */
  prefetch?: number;
  initialState(): S;
  /**
   * Must be synchronous and deterministic: it is the state transition the copy replays. It need not
   * commute: the copy applies the source's messages in the source's order.
   */
  apply(state: S, message: InputMessage, ctx: ApplyContext): void;
  /** The part of the state compared at the fence (default: all of it). */
  digestOf?(state: S): unknown;
  /** A small summary reported in status replies. */
  describe?(state: S): Record<string, unknown>;
  log?(line: string): void;
  /** Where the instance reads its identity (default: ./identity's, from the runtime). */
  identity?: () => string;
}
