import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { limitsRows, paperComparison, renderMarkdownReport, writeMarkdownReport } from '../../bench/report';
import {
  formatSummaryTable, fromCsv, median, parseCsvRecords, ratios, readCsv, stat, summarize, toCsv, writeCsv,
} from '../../bench/summary';
import { BENCH_COLUMNS, type BenchRow } from '../../bench/types';

let runNo = 0;
function row(o: Partial<BenchRow> = {}): BenchRow {
  runNo++;
  return {
    run: runNo, repetition: 1, sweep: 'rate', strategy: 'shadow', msg_rate: 10, above_capacity: false, state_bytes: 10 * 2 ** 20, work_ms: 4,
    checkpoint_bytes: 50_000_000, total_ms: 1000, validate_ms: 10, prepare_ms: 20, checkpoint_ms: 300, freeze_ms: 250, transfer_ms: 40,
    restore_ms: 400, replay_ms: 150, fence_ms: 20, finalize_ms: 60, downtime_ms: 50, observed_downtime_ms: 70, max_e2e_latency_ms: 90,
    p99_e2e_latency_ms: 60, baseline_max_e2e_latency_ms: 20, baseline_p99_e2e_latency_ms: 10, published: 100, processed: 100, lost: 0,
    duplicated: 0, duplicate_outputs: 0, state_match: true, replayed: 5, cutoff_fired: false, outcome: 'completed',
    ...o,
  };
}

describe('median, min and max', () => {
  it('takes the middle value for odd n and the mean of the two middle values for even n', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
    expect(stat([9, 2, 4, 100])).toEqual({ median: 6.5, min: 2, max: 100 });
    expect(stat([])).toBeNull();
  });
  it('ignores values a run could not measure', () => {
    expect(stat([3, Number.NaN, 5])).toEqual({ median: 4, min: 3, max: 5 });
  });
});

describe('summarize', () => {
  const rows = [
    row({ total_ms: 300, downtime_ms: 30 }),
    row({ total_ms: 100, downtime_ms: 10 }),
    row({ total_ms: 200, downtime_ms: 40, duplicated: 1 }),
    // Not completed: out of every statistic, but its lost message still counts.
    row({ total_ms: 99_999, downtime_ms: 99_999, outcome: 'rolled-back', lost: 2, state_match: false }),
    row({ strategy: 'stop-and-copy', total_ms: 800, downtime_ms: 700 }),
    row({ strategy: 'stop-and-copy', total_ms: 1000, downtime_ms: 900 }),
    row({ strategy: 'stop-and-copy', total_ms: 900, downtime_ms: 600, state_match: false }),
    row({ strategy: 'stop-and-copy', total_ms: 1100, downtime_ms: 1000 }),
    row({ sweep: 'state', strategy: 'shadow', msg_rate: 60, state_bytes: 2 ** 30, total_ms: 5000 }),
  ];
  const s = summarize(rows);

  it('groups by sweep, strategy, rate and state size, baseline first', () => {
    expect(s.map((g) => [g.sweep, g.strategy, g.msg_rate, g.state_bytes])).toEqual([
      ['rate', 'stop-and-copy', 10, 10 * 2 ** 20],
      ['rate', 'shadow', 10, 10 * 2 ** 20],
      ['state', 'shadow', 60, 2 ** 30],
    ]);
  });
  it('computes odd-n statistics over completed runs only', () => {
    const sh = s[1];
    expect(sh.n).toBe(3);
    expect(sh.notCompleted).toBe(1);
    expect(sh.stats.total_ms).toEqual({ median: 200, min: 100, max: 300 });
    expect(sh.stats.downtime_ms).toEqual({ median: 30, min: 10, max: 40 });
    expect(sh.lost).toBe(2);
    expect(sh.duplicated).toBe(1);
    expect(sh.published).toBe(400);
    // The rolled-back run's state mismatch is not a migrated state.
    expect(sh.stateMatchAll).toBe(true);
  });
  it('computes even-n statistics', () => {
    const sc = s[0];
    expect(sc.n).toBe(4);
    expect(sc.stats.total_ms).toEqual({ median: 950, min: 800, max: 1100 });
    expect(sc.stats.downtime_ms).toEqual({ median: 800, min: 600, max: 1000 });
    expect(sc.stateMatchAll).toBe(false);
  });
  it('has no statistics for a group without a completed run', () => {
    const g = summarize([row({ outcome: 'error' })])[0];
    expect(g.n).toBe(0);
    expect(g.notCompleted).toBe(1);
    expect(g.stats.total_ms).toBeNull();
  });
  it('puts shadow against stop-and-copy per rate of the rate sweep', () => {
    const r = ratios(s);
    expect(r).toHaveLength(1);
    expect(r[0].msg_rate).toBe(10);
    expect(r[0].total).toMatchObject({ shadow: 200, stopAndCopy: 950 });
    expect(r[0].total.ratio).toBeCloseTo(200 / 950);
    expect(r[0].downtime.ratio).toBeCloseTo(30 / 800);
    expect(r[0].downtime.reductionPct).toBeCloseTo(96.25);
  });
  it('leaves out a rate without both strategies, and a zero baseline gives no ratio', () => {
    expect(ratios(summarize([row()]))).toEqual([]);
    const r = ratios(summarize([row({ downtime_ms: 5 }), row({ strategy: 'stop-and-copy', downtime_ms: 0 })]));
    expect(r[0].downtime.ratio).toBeNull();
    expect(r[0].downtime.reductionPct).toBeNull();
  });
  it('formats a terminal table with medians, ranges and ratios', () => {
    const text = formatSummaryTable(s, ratios(s));
    expect(text).toContain('950 (800–1,100)');
    expect(text).toContain('3 (+1 not completed)');
    expect(text).toContain('−96.3 %');
    expect(text).toContain('1 GiB');
    expect(text).not.toMatch(/\x1b\[/);
  });
});

describe('CSV', () => {
  const rows = [
    row({ above_capacity: true, cutoff_fired: true, msg_rate: 313, total_ms: 121_374.5 }),
    row({ strategy: 'stop-and-copy', outcome: 'rolled-back', state_match: false, sweep: 'state' }),
  ];
  it('writes the columns in BENCH_COLUMNS order with booleans as true/false', () => {
    const [header, first] = toCsv(rows).split('\n');
    expect(header).toBe(BENCH_COLUMNS.join(','));
    const cells = first.split(',');
    expect(cells[BENCH_COLUMNS.indexOf('above_capacity')]).toBe('true');
    expect(cells[BENCH_COLUMNS.indexOf('state_match')]).toBe('true');
  });
  it('reads back exactly what it wrote', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-csv-'));
    const file = path.join(dir, 'sub', 'runs.csv');
    writeCsv(file, rows);
    expect(readCsv(file)).toEqual(rows);
    fs.rmSync(dir, { recursive: true });
  });
  it('parses quoted fields, CRLF line ends and columns in another order', () => {
    expect(parseCsvRecords('a,"b,c","say ""hi"""\r\n1,2,3\r\n')).toEqual([['a', 'b,c', 'say "hi"'], ['1', '2', '3']]);
    const reordered = [...BENCH_COLUMNS].reverse();
    const text = `${reordered.join(',')}\n${reordered.map((c) => String(rows[0][c])).join(',')}\n`;
    expect(fromCsv(text)).toEqual([rows[0]]);
  });
  it('rejects a malformed value instead of guessing', () => {
    const bad = toCsv([rows[0]]).replace(',true,', ',yes,');
    expect(() => fromCsv(bad)).toThrow(/true\/false/);
    expect(() => fromCsv('run,strategy\n1,shadow\n')).toThrow(/lacks columns/);
  });
});

describe('markdown report', () => {
  // Shadow: downtime 40 vs 800 ms (−95 %) at 10 msg/s and 60 vs 1,200 ms at 120 msg/s; one overloaded run pair.
  const rows = [
    ...[1, 2, 3].flatMap((rep) => [
      row({ repetition: rep, strategy: 'shadow', msg_rate: 10, total_ms: 1200 + rep, downtime_ms: 40, checkpoint_ms: 300, freeze_ms: 200 }),
      row({ repetition: rep, strategy: 'stop-and-copy', msg_rate: 10, total_ms: 900, downtime_ms: 800, checkpoint_ms: 320, freeze_ms: 800 }),
      row({ repetition: rep, strategy: 'shadow', msg_rate: 120, total_ms: 3400, downtime_ms: 60, checkpoint_ms: 310, freeze_ms: 220 }),
      row({ repetition: rep, strategy: 'stop-and-copy', msg_rate: 120, total_ms: 950, downtime_ms: 1200, checkpoint_ms: 330, freeze_ms: 1200 }),
    ]),
    row({ strategy: 'shadow', msg_rate: 313, above_capacity: true, total_ms: 121_000, cutoff_fired: true }),
    row({ strategy: 'stop-and-copy', msg_rate: 313, above_capacity: true, total_ms: 1000, downtime_ms: 900 }),
    row({ strategy: 'shadow', msg_rate: 120, outcome: 'error', run: 4242, total_ms: 0 }),
    row({ strategy: 'stop-and-copy', msg_rate: 10, lost: 3, run: 4343 }),
  ];
  const summary = summarize(rows);
  const r = ratios(summary);

  it('puts our computed numbers beside the published anchors', () => {
    const cmp = paperComparison({ rows, summary, ratios: r });
    const by = (source: string) => cmp.find((c) => c.source === source)!.ours;
    // Downtime change per rate: 40/800 − 1 = −95 %, 60/1,200 − 1 = −95 %.
    expect(by('MS2M + FCC 2025')).toContain('−95.0 %');
    expect(by('SHADOW 2026, 10 msg/s')).toContain('shadow total 1.20 s');
    expect(by('SHADOW 2026, 10 msg/s')).toContain('downtime 40 ms vs 800 ms');
    expect(by('SHADOW 2026, 120 msg/s')).toContain('at 120 msg/s: shadow total 3.40 s');
    expect(by('SHADOW 2026, 120 msg/s')).toContain('at 313 msg/s (above capacity): shadow total 121.0 s, replay cutoff fired in 1 of 1 runs');
    // Pooled over the 12 completed in-capacity runs plus the 10 msg/s run that lost messages (it completed).
    expect(by('Optimisation notes (checkpoint)')).toContain('median checkpoint 310 ms');
    expect(by('Paguro 2026')).toContain('shadow median freeze 210 ms');
    expect(by('Paguro 2026')).toContain('stop-and-copy median freeze 800 ms');
  });

  it('writes every section, lists the exceptions and links the plots relatively', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-report-'));
    const file = path.join(dir, 'report.md');
    writeMarkdownReport(file, {
      rows, summary, ratios: r, plots: [path.join(dir, 'total-vs-rate.png')], machine: '2 × Test CPU',
      profile: { title: 'One shadow run', rows: [{ part: 'dispatch', ms: 250, note: 'queueing' }, { part: 'replay', ms: 750 }] },
    });
    const md = fs.readFileSync(file, 'utf8');
    fs.rmSync(dir, { recursive: true });
    for (const h of ['## What was run', '## Medians', '## Shadow vs stop-and-copy', '## Loss accounting', '## Plots', '## Where the time goes', '## Compared with the papers']) {
      expect(md).toContain(h);
    }
    expect(md).toContain('2 × Test CPU');
    expect(md).toContain('10, 120, 313 (above capacity) msg/s × 3 repetitions');
    expect(md).toContain('](total-vs-rate.png)');
    expect(md).toContain('| dispatch | 250 | 25.0 % | queueing |');
    expect(md).toContain('| 4242 | rate | shadow | 120 | 10 MiB | 1 | error |');
    expect(md).toContain('| 4343 | rate | stop-and-copy | 10 | 10 MiB | 1 | completed | 3 |');
    expect(md).toContain('−19.9 %');
    expect(md).toContain('one host');
  });

  it('says so when every run was clean and leaves out an absent profile', () => {
    const clean = rows.filter((x) => x.outcome === 'completed' && x.lost === 0);
    const s = summarize(clean);
    const md = renderMarkdownReport({ rows: clean, summary: s, ratios: ratios(s), plots: [], machine: 'm' });
    expect(md).toContain('Every run completed with nothing lost or duplicated');
    expect(md).not.toContain('## Where the time goes');
    expect(md).not.toContain('## Capacity of the service');
  });

  it('titles the strategies that ran, says where they ran, and gives the capacity against what the work allows', () => {
    const s = summarize(rows);
    const md = renderMarkdownReport({ rows, summary: s, ratios: ratios(s), plots: [], machine: 'm', runtime: 'kubernetes', capacity: { 10: 92, 0: 2100, 2: 480 } });
    expect(md.split('\n')[0]).toBe('# ms2m benchmark: stop-and-copy vs shadow');
    expect(md).toContain('a two-node test cluster whose kubelets, containerd, runc and CRIU share one VM');
    expect(md).not.toContain('plain processes');
    const section = md.slice(md.indexOf('## Capacity of the service'));
    const table = section.slice(0, section.indexOf('\n## ')).split('\n').filter((l) => l.startsWith('| '));
    expect(table.slice(2)).toEqual(['| 0 | 2,100 | – | – |', '| 2 | 480 | 500 | 96 % |', '| 10 | 92 | 100 | 92 % |']);
  });

  it('reads each figure of the shadow runs of a size as a ratio to the limit measured at that size', () => {
    const mb10 = 10 * 2 ** 20;
    const limits = [{ stateBytes: mb10, imageBytes: 16 * 2 ** 20, dumpMs: 100, restoreMs: 80, copyHashMs: 20, copyHashMBps: 800, rabbitRttMs: 0.5 }];
    const runs = [
      row({ state_bytes: mb10, checkpoint_ms: 300, transfer_ms: 40, restore_ms: 400, downtime_ms: 5, checkpoint_bytes: 16 * 2 ** 20 }),
      row({ state_bytes: mb10, checkpoint_ms: 500, transfer_ms: 60, restore_ms: 200, downtime_ms: 15, checkpoint_bytes: 16 * 2 ** 20 }),
      // Not counted: another strategy, and a run that did not complete.
      row({ state_bytes: mb10, strategy: 'stop-and-copy', checkpoint_ms: 9000 }),
      row({ state_bytes: mb10, outcome: 'rolled-back', checkpoint_ms: 9000 }),
    ];
    expect(limitsRows(limits, runs)).toEqual([
      ['10 MiB', 'checkpoint vs bare criu dump', '100 ms (16 MiB image)', '400 ms', '4.0×'],
      ['10 MiB', 'transfer vs copy + SHA-256 of the image', '20 ms (800 MB/s)', '50 ms (333 MB/s)', '2.5×'],
      ['10 MiB', 'restore vs bare criu restore', '80 ms', '300 ms', '3.8×'],
      ['10 MiB', 'downtime vs one RabbitMQ round trip', '0.50 ms', '10 ms', '20.0×'],
    ]);
  });
});
