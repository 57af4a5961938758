/**
 * What a command's action reaches outside itself, passed in so a test can see what it calls: the
 * terminal's streams, the exit, and (for commands that talk to running workers) the SDK client. Commands
 * that run something else (the demo, the workers, chaos, the load) take their runner the same way.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Ms2mClient } from '../../sdk';

/** A stream a view draws on: a terminal (isTTY) or anything else (a pipe, a file). */
export interface OutStream {
  write(text: string): boolean;
  isTTY?: boolean;
  columns?: number;
  rows?: number;
}

export interface Io {
  /** A line on stdout. */
  out(line: string): void;
  /** A line on stderr. */
  err(line: string): void;
  /** Ends the process; in a test it returns, so actions `return io.exit(…)`. */
  exit(code: number): void;
  stdout: OutStream;
  stderr: OutStream;
}

/** The SDK client's methods a command uses (`Pick<Ms2mClient, …>`), so a test's fake needs only those. */
export interface SdkDeps<C = Ms2mClient> extends Io {
  /** Connects for one command; the process ends with the command, closing it. */
  connect(): Promise<C>;
}

export const processIo: Io = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
  exit: (code) => process.exit(code),
  stdout: process.stdout,
  stderr: process.stderr,
};

export const sdkDeps: SdkDeps = { ...processIo, connect: () => Ms2mClient.connect() };

/** `--json` moves the human-readable lines to stderr, so stdout holds only the JSON. */
export const sayFor = (io: Io, json: boolean | undefined) => (json ? (l: string) => io.err(l) : (l: string) => io.out(l));

/** What a failed workflow said (its refusal and the refusal's type), rather than "Workflow execution failed". */
export function failureText(err: unknown): string {
  const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
  if (cause instanceof ApplicationFailure) return `${cause.type ? `${cause.type}: ` : ''}${cause.message}`;
  return cause?.message ?? (err as Error).message;
}
