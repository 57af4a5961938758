/**
 * The benchmark's runs as CSV, one row per run in BENCH_COLUMNS order (csv-stringify and csv-parse).
 * A CSV from before a column existed reads with that column's default; a value that is not what its
 * column holds is refused, never guessed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { BENCH_COLUMNS, LATER_COLUMN_DEFAULTS, type BenchRow } from './types';

const BOOLEAN_COLUMNS = new Set<keyof BenchRow>(['above_capacity', 'state_match', 'cutoff_fired']);
const STRING_COLUMNS = new Set<keyof BenchRow>(['strategy', 'mechanism', 'outcome', 'sweep']);

export function toCsv(rows: readonly BenchRow[]): string {
  // As text already: csv-stringify would write booleans as 1 and an empty string.
  return stringify(
    rows.map((r) => BENCH_COLUMNS.map((c) => String(r[c]))),
    { header: true, columns: [...BENCH_COLUMNS] },
  );
}

export function writeCsv(file: string, rows: readonly BenchRow[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, toCsv(rows));
}

export function fromCsv(text: string): BenchRow[] {
  const [header, ...body] = parse(text, { skip_empty_lines: true, relax_column_count: true }) as string[][];
  if (!header) return [];
  const index = new Map(header.map((h, i) => [h.trim(), i]));
  // A CSV from before the mechanisms lacks their columns: its runs moved files, with nothing streamed or lazy.
  const missing = BENCH_COLUMNS.filter((c) => !index.has(c) && LATER_COLUMN_DEFAULTS[c] === undefined);
  if (missing.length) throw new Error(`CSV lacks columns: ${missing.join(', ')}`);
  return body.map((rec, line) => {
    const row: Record<string, unknown> = {};
    for (const c of BENCH_COLUMNS) {
      const raw = index.has(c) ? (rec[index.get(c)!] ?? '') : LATER_COLUMN_DEFAULTS[c]!;
      if (BOOLEAN_COLUMNS.has(c)) {
        if (raw !== 'true' && raw !== 'false') throw new Error(`row ${line + 1}: ${c} is not true/false: ${JSON.stringify(raw)}`);
        row[c] = raw === 'true';
      } else if (STRING_COLUMNS.has(c)) row[c] = raw;
      else {
        const n = Number(raw);
        if (raw.trim() === '' || (Number.isNaN(n) && raw !== 'NaN')) throw new Error(`row ${line + 1}: ${c} is not a number: ${JSON.stringify(raw)}`);
        row[c] = n;
      }
    }
    return row as unknown as BenchRow;
  });
}

export function readCsv(file: string): BenchRow[] {
  return fromCsv(fs.readFileSync(file, 'utf8'));
}
