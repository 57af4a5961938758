/**
 * The benchmark's --quick preset, run for real (real migrations over the local runtime): it must write a
 * CSV row per run with nothing lost, the markdown report and the plots.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config';
import { readCsv } from '../../bench/csv';

describe('npm run bench -- --quick', () => {
  it(
    'runs the small grid and writes runs.csv, report.md and PNG plots',
    async () => {
      const out = mkdtempSync(path.join(os.tmpdir(), 'ms2m-bench-'));
      const root = loadConfig().projectRoot;
      // Asynchronously: a synchronous spawn would block the test worker's event loop for minutes.
      const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [path.join(root, 'dist', 'bench', 'main.js'), '--quick', '--out', out]);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (status) => resolve({ status, stdout, stderr }));
      });
      expect(r.status, r.stderr.slice(-2000)).toBe(0);
      expect(r.stdout).toMatch(/median/i);

      const rows = readCsv(path.join(out, 'runs.csv'));
      // 2 strategies × (3 rates + 1 above capacity) + 2 strategies × 2 state sizes
      expect(rows).toHaveLength(12);
      expect(new Set(rows.map((x) => x.strategy))).toEqual(new Set(['shadow', 'stop-and-copy']));
      expect(rows.filter((x) => x.above_capacity)).toHaveLength(2);
      for (const row of rows) {
        expect(row.outcome).toBe('completed');
        expect(row.lost).toBe(0);
        expect(row.duplicated).toBe(0);
        expect(row.duplicate_outputs).toBe(0);
        expect(row.state_match).toBe(true);
        expect(row.published).toBeGreaterThan(0);
      }

      const report = readFileSync(path.join(out, 'report.md'), 'utf8');
      expect(report).toMatch(/SHADOW/);
      expect(report).toMatch(/Where the time goes/);
      for (const png of ['total-vs-rate.png', 'downtime-vs-rate.png', 'phases-at-60.png', 'state-size.png']) {
        const file = path.join(out, png);
        expect(existsSync(file), png).toBe(true);
        expect(readFileSync(file).subarray(1, 4).toString()).toBe('PNG');
      }
    },
    16 * 60_000,
  );
});
