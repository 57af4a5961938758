import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { phaseRate, plotSpecs, writePlots } from '../../bench/plots';
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
      run: rows.length + 1, repetition: rep, sweep, strategy, mechanism: 'files', msg_rate: rate, above_capacity: above, state_bytes: mib * 2 ** 20,
      work_ms: 4, checkpoint_bytes: mib * 2 ** 20 + 40e6, streamed_bytes: 0, total_ms: total, ...phases, lazy_bytes: 0, lazy_ms: 0,
      dump_ms: phases.checkpoint_ms - 20, transfer_tool_ms: phases.transfer_ms - 10, restore_tool_ms: phases.restore_ms - 30,
      freeze_ms: shadow ? phases.checkpoint_ms : downtime,
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

/** The same runs once per mechanism: stream freezes a little longer and transfers almost nothing; lazy freezes and restores less. */
function withMechanisms(rows: BenchRow[], mechanisms: Array<BenchRow['mechanism']>): BenchRow[] {
  const shaped = (r: BenchRow, m: BenchRow['mechanism']): BenchRow => {
    const stream = m.startsWith('stream');
    const lazy = m.endsWith('lazy');
    const mib = r.state_bytes / 2 ** 20;
    return {
      ...r,
      mechanism: m,
      freeze_ms: Math.round(r.freeze_ms * (stream ? 1.1 : 1) * (lazy ? 0.6 : 1)),
      transfer_ms: stream ? 5 : r.transfer_ms,
      restore_ms: lazy ? Math.round(r.restore_ms / 4) : r.restore_ms,
      total_ms: Math.round(r.total_ms * (stream ? 0.8 : 1) * (lazy ? 0.9 : 1)),
      streamed_bytes: stream ? r.checkpoint_bytes - 1e6 : 0,
      lazy_bytes: lazy ? r.checkpoint_bytes / 2 : 0,
      lazy_ms: lazy ? Math.round(100 + 4 * mib) : 0,
    };
  };
  return mechanisms.flatMap((m) => rows.map((r) => shaped(r, m))).map((r, i) => ({ ...r, run: i + 1 }));
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

  it('draws freeze and total time against the state size, one line per mechanism, besides the plots of before', async () => {
    const dir = tmp();
    const rows = withMechanisms(synthRows([20, 60], [10, 100, 1024]), ['files', 'stream', 'lazy', 'stream+lazy']);
    const files = await writePlots(dir, rows);
    expect(files.map((f) => path.basename(f))).toEqual([
      'total-vs-rate.png', 'downtime-vs-rate.png', 'phases-at-60.png', 'state-size.png', 'freeze-vs-state.png', 'total-vs-state.png',
    ]);
    for (const f of files.slice(4)) {
      const buf = fs.readFileSync(f);
      const { width, height } = pngSize(buf);
      expect(width).toBeGreaterThan(1000);
      expect(height).toBeGreaterThan(400);
      expect(buf.length).toBeGreaterThan(30_000);
    }
    const freeze = plotSpecs(rows).find((p) => p.file === 'freeze-vs-state.png')!.spec as unknown as {
      data: { values: Array<{ mechanism: string; strategy: string; size: string; median: number }> };
      encoding: { color: { field: string; scale: { domain: string[] } } };
    };
    // One point per size, strategy and mechanism; coloured by mechanism, baseline first.
    expect(freeze.data.values).toHaveLength(3 * 2 * 4);
    expect(freeze.encoding.color.field).toBe('mechanism');
    expect(freeze.encoding.color.scale.domain).toEqual(['files', 'stream', 'lazy', 'stream+lazy']);
    expect(new Set(freeze.data.values.map((v) => v.size))).toEqual(new Set(['10 MiB', '100 MiB', '1 GiB']));
  }, 60_000);

  it('draws no mechanism plots for one mechanism, and no state plots without a state sweep', async () => {
    expect(plotSpecs(withMechanisms(synthRows([60], [10, 100]), ['stream'])).map((p) => p.file)).toEqual([
      'total-vs-rate.png', 'downtime-vs-rate.png', 'phases-at-60.png', 'state-size.png',
    ]);
    expect(plotSpecs(withMechanisms(synthRows([60], []), ['files', 'lazy'])).map((p) => p.file)).toEqual([
      'total-vs-rate.png', 'downtime-vs-rate.png', 'phases-at-60.png',
    ]);
  });

  it('tells the mechanisms apart in the plots of before', () => {
    const rows = withMechanisms(synthRows([60], [10]), ['files', 'lazy']);
    const total = plotSpecs(rows).find((p) => p.file === 'total-vs-rate.png')!.spec as unknown as {
      data: { values: Array<{ series: string }> }; encoding: { color: { title: string } };
    };
    expect(new Set(total.data.values.map((v) => v.series))).toEqual(new Set(['stop-and-copy, files', 'stop-and-copy, lazy', 'shadow, files', 'shadow, lazy']));
    expect(total.encoding.color.title).toBe('strategy, mechanism');
  });

  it('colours one strategy by mechanism, as the plots by mechanism do', () => {
    const rows = withMechanisms(synthRows([60], [10]), ['lazy', 'files', 'stream']).filter((r) => r.strategy === 'shadow');
    const color = (file: string) =>
      (plotSpecs(rows).find((p) => p.file === file)!.spec as unknown as { encoding: { color: { scale: { domain: string[]; range: string[] } } } }).encoding.color.scale;
    expect(color('total-vs-rate.png')).toEqual({ domain: ['shadow, files', 'shadow, stream', 'shadow, lazy'], range: ['#4c78a8', '#f58518', '#54a24b'] });
  });
});
