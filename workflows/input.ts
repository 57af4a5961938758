/**
 * How every UI-startable workflow takes its one JSON argument: malformed JSON (from the Web UI) and schema
 * violations both end the workflow with a non-retryable InvalidInput naming the field and the fix.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import type { ZodType, ZodTypeDef } from 'zod';
import { describeInputError } from '../lib/migration';
import { malformedPayloadError } from '../lib/payload-converter';
import { FAILURE } from '../lib/contracts';

export function parseInput<T>(what: string, schema: ZodType<T, ZodTypeDef, unknown>, raw: unknown): T {
  const malformed = malformedPayloadError(raw);
  if (malformed) throw ApplicationFailure.nonRetryable(`invalid ${what} input: ${malformed}`, FAILURE.InvalidInput);
  const r = schema.safeParse(raw);
  if (!r.success) throw ApplicationFailure.nonRetryable(describeInputError(what, r.error, raw), FAILURE.InvalidInput);
  return r.data;
}
