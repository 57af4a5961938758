import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { phaseRate, writePlots } from '../../bench/plots';
import { summarize } from '../../bench/summary';
import type { BenchRow } from '../../bench/types';

/** Rows shaped like real runs: shadow replays longer at higher rates; stop-and-copy is down for the whole copy. */
function synthRows(rates: number[], stateSizesMiB: number[]): BenchRow[] {
  let seed = 7;
  const jitter = (x: number) => Math.round(x * (0.9 + 0.2 * ((seed = (seed * 16807) % 2147483647) / 2147483647)));
  const rows: BenchRow[] = [];
  const add = (sweep: BenchRow['sweep'], strategy: BenchRow['strategy'], rate: number, mib: number, rep: number, above = false) => {
    const shadow = strategy === 'shadow';
    const phases = {
      validate_ms: jitter(25), prepare_ms: jitter(60), checkpoint_ms: jitter(180 + 9 * mib), transfer_ms: jitter(40 + 2.5 * mib),
      restore_ms: jitter(260 + 6 * mib), replay_ms: shadow ? (above ? jitter(120_000) : jitter(300 + 12 * rate)) : 0,
      fence_ms: shadow ? jitter(30) : 0, finalize_ms: jitter(90),
    };
    const total = Object.values(phases).reduce((a, b) => a + b, 0);
    const downtime = shadow ? jitter(40) : phases.checkpoint_ms + phases.transfer_ms + phases.restore_ms;
    rows.push({
      run: rows.length + 1, repetition: rep, sweep, strategy, msg_rate: rate, above_capacity: above, state_bytes: mib * 2 ** 20, work_ms: 4,
      checkpoint_bytes: mib * 2 ** 20 + 40e6, total_ms: total, ...phases, freeze_ms: shadow ? phases.checkpoint_ms : downtime,
      downtime_ms: downtime, observed_downtime_ms: downtime + 20, max_e2e_latency_ms: downtime + 60, p99_e2e_latency_ms: downtime,
      baseline_max_e2e_latency_ms: 20, baseline_p99_e2e_latency_ms: 10, published: rate * 5, processed: rate * 5, lost: 0, duplicated: 0,
      duplicate_outputs: 0, state_match: true, replayed: 10, cutoff_fired: shadow && above, outcome: 'completed',
    });
  };
  for (const rep of [1, 2, 3]) {
    for (const s of ['stop-and-copy', 'shadow'] as const) {
      for (const rate of rates) add('rate', s, rate, 10, rep);
      add('rate', s, 313, 10, rep, true);
      for (const mib of stateSizesMiB) add('state', s, 60, mib, rep);
    }
  }
  return rows;
}

/** Width and height from the IHDR chunk, which every valid PNG starts with after its signature. */
function pngSize(buf: Buffer): { width: number; height: number } {
  expect(buf.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  expect(buf.subarray(12, 16).toString('ascii')).toBe('IHDR');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-plots-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('plots', () => {
  it('writes the four PNGs, each a real picture', async () => {
    const dir = tmp();
    const files = await writePlots(dir, synthRows([10, 20, 40, 60, 80, 100, 120], [10, 100, 1024]));
    expect(files.map((f) => path.basename(f))).toEqual(['total-vs-rate.png', 'downtime-vs-rate.png', 'phases-at-60.png', 'state-size.png']);
    for (const f of files) {
      const buf = fs.readFileSync(f);
      const { width, height } = pngSize(buf);
      expect(width).toBeGreaterThan(1000);
      expect(height).toBeGreaterThan(400);
      // A blank or text-less render compresses to a few kB; these hold axes, labels and marks.
      expect(buf.length).toBeGreaterThan(30_000);
    }
  }, 30_000);

  it('skips the state-size plot without a state sweep', async () => {
    const files = await writePlots(tmp(), synthRows([20, 120], []));
    expect(files.map((f) => path.basename(f))).toEqual(['total-vs-rate.png', 'downtime-vs-rate.png', 'phases-at-60.png']);
  }, 30_000);

  it('breaks down the phases at the rate closest to 60 when 60 was not run', () => {
    expect(phaseRate(summarize(synthRows([20, 50, 80], [])).filter((g) => g.sweep === 'rate'))).toBe(50);
    expect(phaseRate(summarize(synthRows([40, 80], [])))).toBe(40);
    expect(phaseRate([])).toBeNull();
  });
});
