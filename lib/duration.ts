/**
 * Durations as people write them, a number and a unit (ms, s, m, h, d: "500ms", "90s", "10m"), read by
 * one zod schema: the CLI's options and the SDK's schedule interval share it.
 */
import { z } from 'zod';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h|d)$/;
export const shownMs = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

/** A duration's text, in whole milliseconds, within [min, max]; `rule` is the message of every refusal. */
export function durationText(o: { min: number; max?: number; rule: string }) {
  const text = z
    .string()
    .trim()
    .regex(DURATION, `${o.rule} (a number and a unit: ms, s, m, h or d)`)
    .transform((v) => {
      const [, n, unit] = DURATION.exec(v)!;
      return Math.round(Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS]);
    });
  const ms = z.number().min(o.min, o.rule);
  return text.pipe(o.max !== undefined ? ms.max(o.max, o.rule) : ms);
}

/** A duration's text or a number of milliseconds (an SDK caller's choice), within [min, max]. */
export function durationOrMs(o: { min: number; max?: number; rule: string }) {
  const ms = z.number({ invalid_type_error: o.rule }).finite(o.rule).min(o.min, o.rule);
  return z.union([durationText(o), (o.max !== undefined ? ms.max(o.max, o.rule) : ms).transform(Math.round)], { errorMap: () => ({ message: o.rule }) });
}
