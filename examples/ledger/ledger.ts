/**
 * An order-sensitive example service: a ledger of accounts that moves money between them, refusing a
 * transfer the paying account cannot cover. Whether a transfer is accepted depends on every transfer
 * applied before it, from every producer, so two instances that apply the same messages in a different
 * order end in different states. A hash chain over the applied messages, in apply order, makes the
 * order itself part of the state. The game example cannot show a reordering; this one cannot hide it.
 *
 * The reducer is pure so that the oracle (oracle.ts) can recompute the state and every output from the
 * apply sequence and the producers' log.
 */
import { createHash } from 'node:crypto';
import { ballast } from '../footprint';

export const ACCOUNTS = 16;
export const OPENING_BALANCE = 100;

export interface Transfer {
  from: number;
  to: number;
  amount: number;
}

export interface LedgerState {
  balances: number[];
  /** Messages applied, and the position of the last one in the apply sequence (1-based). */
  count: number;
  /** sha256 chain over (producer, seq, verdict) of every applied message, in apply order. */
  head: string;
  accepted: number;
  rejected: number;
  /** Applications per producer, counted by the application: a message applied twice shows here. */
  appliedByProducer: Record<string, number>;
  /** Padding that gives the process a realistic memory footprint for checkpoint measurements. */
  ballast: Buffer[];
}

/** What a transfer did, published as the message's output. */
export interface LedgerOutput {
  n: number;
  producer: string;
  seq: number;
  accepted: boolean;
  from: number;
  to: number;
  fromBalance: number;
  toBalance: number;
  head: string;
}

export const GENESIS = '0'.repeat(64);

export function ledgerTopology(service: string) {
  return { exchange: `${service}.transfers`, queue: `${service}.primary`, outputExchange: `${service}.receipts` };
}

export function initialLedger(ballastBytes = 0): LedgerState {
  return { balances: Array.from({ length: ACCOUNTS }, () => OPENING_BALANCE), count: 0, head: GENESIS, accepted: 0, rejected: 0, appliedByProducer: {}, ballast: ballast(ballastBytes) };
}

export function chain(head: string, producer: string, seq: number, accepted: boolean): string {
  return createHash('sha256').update(`${head}|${producer}:${seq}|${accepted ? 1 : 0}`).digest('hex');
}

/** Applies one transfer; `producer`/`seq` are the message's stamp (the chain covers who sent what). */
export function applyTransfer(state: LedgerState, t: Transfer, producer: string, seq: number): LedgerOutput {
  const accepted = t.from !== t.to && state.balances[t.from] >= t.amount;
  if (accepted) {
    state.balances[t.from] -= t.amount;
    state.balances[t.to] += t.amount;
    state.accepted++;
  } else {
    state.rejected++;
  }
  state.count++;
  state.head = chain(state.head, producer, seq, accepted);
  state.appliedByProducer[producer] = (state.appliedByProducer[producer] ?? 0) + 1;
  return { n: state.count, producer, seq, accepted, from: t.from, to: t.to, fromBalance: state.balances[t.from], toBalance: state.balances[t.to], head: state.head };
}

/**
 * A deterministic transfer for a producer's message, so the oracle can regenerate every message from
 * its stamp. Amounts are large against the balances, so refusals are common and order decides them.
 */
export function transferFor(producerIndex: number, seq: number): Transfer {
  const n = (Math.imul(seq, 2654435761) ^ Math.imul(producerIndex + 1, 40503)) >>> 0;
  const from = n % ACCOUNTS;
  const to = (from + 1 + ((n >>> 8) % (ACCOUNTS - 1))) % ACCOUNTS;
  return { from, to, amount: 10 + ((n >>> 16) % 71) };
}

/** What the fence compares and what an instance reports: everything but the padding. */
export function ledgerView(state: LedgerState): Omit<LedgerState, 'ballast'> {
  const { ballast: _ballast, ...rest } = state;
  return rest;
}
