/**
 * Building blocks of the workflows' input schemas and the one renderer of their failures. Every rule's
 * message is written in the field's own terms ("timeouts.heartbeatMs must be at least 1000 ms"), and the
 * renderer adds what was received, so a refusal reads as the rule, the value and, where it helps, the fix.
 * Imported by the workflow sandbox: no Node APIs.
 */
import { z } from 'zod';

const NAME = /^[a-z][a-z0-9-]{0,39}$/;

/** A service or node name: it becomes part of queue names, task queues and file names. */
export const nameField = (field: string, example: string) =>
  z
    .string({ required_error: `${field} is required, e.g. "${example}"`, invalid_type_error: `${field} must be a string, e.g. "${example}"` })
    .regex(NAME, `${field} must be 1-40 lowercase letters, digits or dashes starting with a letter, e.g. "${example}"`);

/** A whole number of milliseconds in [min, max]. */
export const msField = (field: string, min: number, max: number, def: number) =>
  z
    .number({ invalid_type_error: `${field} must be a number of milliseconds` })
    .int(`${field} must be a whole number of milliseconds`)
    .min(min, `${field} must be at least ${min} ms`)
    .max(max, `${field} must be at most ${max} ms`)
    .default(def);

/** A whole count of something (`unit`, plural) in [min, max]. */
export const countField = (field: string, unit: string, min: number, max: number, def: number) =>
  z
    .number({ invalid_type_error: `${field} must be a number of ${unit}` })
    .int(`${field} must be a whole number ≥ ${min}`)
    .min(min, `${field} must be a whole number ≥ ${min}`)
    .max(max, `${field} must be at most ${max}`)
    .default(def);

/** An object-valued field; `example` shows its shape when something else arrives. */
export const objectMessages = (field: string, example: string) => ({
  required_error: `${field} is required, e.g. ${example}`,
  invalid_type_error: `${field} must be a JSON object, e.g. ${example}`,
});

const MAX_SHOWN = 80;

/** The received value, as JSON and cut short: a whole pasted object would drown the rule. */
function shown(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN - 1)}…` : text;
}

function valueAt(input: unknown, path: Array<string | number>): unknown {
  let v = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[key];
  }
  return v;
}

/**
 * Turns a schema failure into one line per field, each naming the field, the rule and (given the raw
 * input) the value that broke it.
 */
export function describeInputError(what: string, error: z.ZodError, input?: unknown): string {
  const lines = error.issues.map((i) => {
    const field = i.path.join('.') || '(input)';
    if (i.code === 'unrecognized_keys') return `${field}: unknown field(s) ${i.keys.join(', ')}; remove them`;
    if (i.code === 'invalid_type' && i.received === 'undefined') return `${field}: ${i.message.startsWith(field) || !i.path.length ? i.message : `${field} is required`}`;
    const value = valueAt(input, i.path);
    return `${field}: ${i.message}${value === undefined ? '' : `, got ${shown(value)}`}`;
  });
  return `invalid ${what} input: ${lines.join('; ')}`;
}
