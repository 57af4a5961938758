import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { paperComparison } from '../../bench/paper-comparison';
import { limitsTable, renderMarkdownReport, writeMarkdownReport } from '../../bench/report';
import {
  formatSummaryTable, mechanismComparison, median, ratios, stat, summarize,
} from '../../bench/summary';
import { fromCsv, readCsv, toCsv, writeCsv } from '../../bench/csv';
import { BENCH_COLUMNS, type BenchRow } from '../../bench/types';

let runNo = 0;
function row(o: Partial<BenchRow> = {}): BenchRow {
  runNo++;
  return {
    run: runNo, repetition: 1, sweep: 'rate', strategy: 'shadow', mechanism: 'files', msg_rate: 10, above_capacity: false, state_bytes: 10 * 2 ** 20,
    work_ms: 4, checkpoint_bytes: 50_000_000, streamed_bytes: 0, total_ms: 1000, validate_ms: 10, prepare_ms: 20, checkpoint_ms: 300, freeze_ms: 250,
    transfer_ms: 40, restore_ms: 400, replay_ms: 150, fence_ms: 20, finalize_ms: 60, lazy_bytes: 0, lazy_ms: 0, dump_ms: 120, transfer_tool_ms: 30,
    restore_tool_ms: 200, downtime_ms: 50, observed_downtime_ms: 70, max_e2e_latency_ms: 90,
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

describe('mechanisms', () => {
  // At 10 msg/s both strategies with files and stream; shadow also lazy (no stop-and-copy baseline for it).
  const rows = [
    ...[1, 2, 3].flatMap((rep) => [
      row({ repetition: rep, mechanism: 'files', total_ms: 1000 + rep, downtime_ms: 20 }),
      row({ repetition: rep, mechanism: 'stream', total_ms: 700, downtime_ms: 10, streamed_bytes: 40e6 }),
      row({ repetition: rep, mechanism: 'lazy', total_ms: 600, downtime_ms: 30, lazy_ms: 900 + rep, lazy_bytes: 30e6 }),
      row({ repetition: rep, strategy: 'stop-and-copy', mechanism: 'stream', total_ms: 800, downtime_ms: 500 }),
      row({ repetition: rep, strategy: 'stop-and-copy', mechanism: 'files', total_ms: 900, downtime_ms: 400 }),
    ]),
  ];
  const s = summarize(rows);

  it('groups by mechanism, the baseline first, after the strategy', () => {
    expect(s.map((g) => `${g.strategy} ${g.mechanism} ${g.n}`)).toEqual([
      'stop-and-copy files 3', 'stop-and-copy stream 3', 'shadow files 3', 'shadow stream 3', 'shadow lazy 3',
    ]);
    const lazy = s.find((g) => g.mechanism === 'lazy')!;
    expect(lazy.stats.lazy_ms).toEqual({ median: 902, min: 901, max: 903 });
    expect(lazy.stats.total_ms?.median).toBe(600);
  });

  it('puts shadow against the stop-and-copy of its own mechanism, and leaves out a mechanism without one', () => {
    const r = ratios(s);
    expect(r.map((x) => [x.mechanism, x.total.shadow, x.total.stopAndCopy, x.downtime.shadow, x.downtime.stopAndCopy])).toEqual([
      ['files', 1002, 900, 20, 400],
      ['stream', 700, 800, 10, 500],
    ]);
  });

  it('shows a mechanism column in the terminal when several ran, and names the one in the caption otherwise', () => {
    const several = formatSummaryTable(s, ratios(s));
    const head = several.split('\n').find((l) => l.includes('strategy'))!;
    // cli-table3 draws │ between the cells.
    expect(head).toMatch(/strategy[\s│]+mechanism[\s│]+rate/);
    expect(several).not.toContain('mechanism files;');
    expect(several).toMatch(/stream[\s│]+10[\s│]+700 \/ 800 = 0\.88×/);
    const one = formatSummaryTable(summarize(rows.filter((x) => x.mechanism === 'stream')), []);
    expect(one).toContain('Rate sweep: state 10 MiB, work 4 ms/msg, mechanism stream;');
    expect(one).not.toMatch(/strategy[\s│]+mechanism/);
  });

  it('compares the mechanisms side by side at each size of the state-size sweep', () => {
    const mb = (n: number) => n * 2 ** 20;
    const state = [
      ...[1, 2].flatMap((rep) => [
        row({ repetition: rep, sweep: 'state', msg_rate: 60, state_bytes: mb(256), mechanism: 'stream', total_ms: 3000, freeze_ms: 900, checkpoint_ms: 1500, transfer_ms: 5, restore_ms: 300, downtime_ms: 12, observed_downtime_ms: 950 }),
        row({ repetition: rep, sweep: 'state', msg_rate: 60, state_bytes: mb(32), mechanism: 'files', total_ms: 1500, freeze_ms: 100 }),
        row({ repetition: rep, sweep: 'state', msg_rate: 60, state_bytes: mb(256), mechanism: 'files', total_ms: 5000, freeze_ms: 1000, checkpoint_ms: 1200, transfer_ms: 2400, restore_ms: 340, downtime_ms: 11, observed_downtime_ms: 1100 }),
        row({ repetition: rep, sweep: 'state', msg_rate: 60, state_bytes: mb(256), mechanism: 'lazy', total_ms: 4000 + rep * 100, lazy_ms: 1800, restore_ms: 90 }),
      ]),
      // The rate sweep is not part of it.
      row({ mechanism: 'stream+lazy', total_ms: 1 }),
    ];
    const cmp = mechanismComparison(summarize(state))!;
    expect(cmp.head).toEqual(['state', 'mechanism', 'n', 'total', 'freeze', 'checkpoint', 'transfer', 'restore', 'lazy phase', 'downtime', 'observed downtime']);
    expect(cmp.body).toEqual([
      ['32 MiB', 'files', '2', '1,500', '100', '300', '40', '400', '–', '50', '70'],
      ['256 MiB', 'files', '2', '5,000', '1,000', '1,200', '2,400', '340', '–', '11', '1,100'],
      ['256 MiB', 'stream', '2', '3,000', '900', '1,500', '5.0', '300', '–', '12', '950'],
      ['256 MiB', 'lazy', '2', '4,150', '250', '300', '40', '90', '1,800', '50', '70'],
    ]);
    expect(formatSummaryTable(summarize(state), [])).toContain('Mechanisms side by side in the state-size sweep');
    // One mechanism in the sweep: nothing to compare.
    expect(mechanismComparison(summarize(state.filter((x) => x.mechanism === 'files')))).toBeNull();
    expect(formatSummaryTable(summarize(state.filter((x) => x.mechanism === 'files')), [])).not.toContain('Mechanisms side by side');
  });

  it('names a strategy column in the comparison when several strategies swept the sizes', () => {
    const state = [
      row({ sweep: 'state', mechanism: 'files' }), row({ sweep: 'state', mechanism: 'lazy' }),
      row({ sweep: 'state', mechanism: 'files', strategy: 'stop-and-copy' }), row({ sweep: 'state', mechanism: 'lazy', strategy: 'stop-and-copy' }),
    ];
    const cmp = mechanismComparison(summarize(state))!;
    expect(cmp.head.slice(0, 3)).toEqual(['state', 'strategy', 'mechanism']);
    expect(cmp.body.map((r) => `${r[1]} ${r[2]}`)).toEqual(['stop-and-copy files', 'stop-and-copy lazy', 'shadow files', 'shadow lazy']);
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
  it('reads CRLF line ends, blank lines and columns in another order', () => {
    expect(fromCsv(`${toCsv(rows).replace(/\n/g, '\r\n')}\r\n`)).toEqual(rows);
    const reordered = [...BENCH_COLUMNS].reverse();
    const text = `${reordered.join(',')}\n${reordered.map((c) => String(rows[0][c])).join(',')}\n`;
    expect(fromCsv(text)).toEqual([rows[0]]);
  });
  it('reads back the mechanisms and their figures', () => {
    const mech = [
      row({ mechanism: 'stream+lazy', streamed_bytes: 270e6, lazy_bytes: 200e6, lazy_ms: 1234.5, dump_ms: 800, transfer_tool_ms: 12, restore_tool_ms: 95 }),
      row({ mechanism: 'lazy', lazy_ms: 10 }),
    ];
    expect(fromCsv(toCsv(mech))).toEqual(mech);
    expect(toCsv(mech).split('\n')[0]).toContain(',strategy,mechanism,');
  });
  it('reads a CSV from before the mechanisms as files with zeros', () => {
    const later = ['mechanism', 'streamed_bytes', 'lazy_bytes', 'lazy_ms', 'dump_ms', 'transfer_tool_ms', 'restore_tool_ms'];
    const older = BENCH_COLUMNS.filter((c) => !later.includes(c));
    const text = `${older.join(',')}\n${rows.map((r) => older.map((c) => String(r[c])).join(',')).join('\n')}\n`;
    expect(fromCsv(text)).toEqual(rows.map((r) => ({ ...r, mechanism: 'files', streamed_bytes: 0, lazy_bytes: 0, lazy_ms: 0, dump_ms: 0, transfer_tool_ms: 0, restore_tool_ms: 0 })));
    // The CSV of an earlier run in the repository reads, every row files.
    const old = readCsv(path.join(__dirname, '../../docs/benchmarks/2026-12-02-limits/runs.csv'));
    expect(old.length).toBe(6);
    expect(new Set(old.map((r) => r.mechanism))).toEqual(new Set(['files']));
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
    const { head, body } = limitsTable(limits, runs);
    expect(head).toEqual(['state', 'what', 'limit', 'in the migration (median)', 'ratio']);
    expect(body).toEqual([
      ['10 MiB', 'checkpoint vs bare criu dump', '100 ms (16 MiB image)', '400 ms', '4.0×'],
      ['10 MiB', 'transfer phase vs copy + SHA-256 of the image', '20 ms (800 MB/s)', '50 ms (333 MB/s)', '2.5×'],
      ['10 MiB', 'restore vs bare criu restore', '80 ms', '300 ms', '3.8×'],
      ['10 MiB', 'downtime vs one RabbitMQ round trip', '0.50 ms', '10 ms', '20.0×'],
    ]);
  });
});

describe('markdown report with mechanisms', () => {
  const mb = (n: number) => n * 2 ** 20;
  const rows = [
    ...[1, 2].flatMap((rep) =>
      (['files', 'stream', 'lazy'] as const).flatMap((mechanism) => [
        row({ repetition: rep, mechanism, msg_rate: 60, total_ms: mechanism === 'files' ? 1000 : 800, downtime_ms: 20, freeze_ms: mechanism === 'lazy' ? 90 : 150 }),
        row({ repetition: rep, mechanism, strategy: 'stop-and-copy', msg_rate: 60, total_ms: 900, downtime_ms: 700 }),
        row({ repetition: rep, mechanism, sweep: 'state', msg_rate: 60, state_bytes: mb(256), total_ms: mechanism === 'stream' ? 3000 : 5000, lazy_ms: mechanism === 'lazy' ? 1800 : 0 }),
      ]),
    ),
    row({ mechanism: 'lazy', msg_rate: 60, outcome: 'rolled-back', run: 777 }),
  ];
  const summary = summarize(rows);
  const md = renderMarkdownReport({ rows, summary, ratios: ratios(summary), plots: [], machine: 'm' });
  const section = (h: string) => {
    const from = md.indexOf(h);
    const rest = md.slice(from + h.length);
    return rest.slice(0, rest.search(/\n## /) < 0 ? undefined : rest.search(/\n## /));
  };

  it('names the mechanisms in the title and what was run, and gives them a column', () => {
    expect(md.split('\n')[0]).toBe('# ms2m benchmark: stop-and-copy vs shadow; files, stream, lazy');
    expect(md).toContain('- **Rate sweep**: stop-and-copy and shadow × mechanisms files, stream, lazy × 60 msg/s × 2 repetitions');
    expect(md).toContain('`stream`, the pages streamed to the target during the dump');
    expect(md).toContain('| strategy | mechanism | rate (msg/s) | n |');
    expect(md).toContain('| strategy | mechanism | state | rate (msg/s) |');
    expect(md).toContain('| 777 | rate | shadow | lazy | 60 |');
  });

  it('keeps a shadow vs stop-and-copy ratio per mechanism', () => {
    const table = section('## Shadow vs stop-and-copy').split('\n').filter((l) => l.startsWith('| '));
    expect(table[0]).toMatch(/^\| mechanism \| rate \(msg\/s\) \|/);
    expect(table.slice(2).map((l) => l.split(' | ').slice(0, 4).join(' | '))).toEqual([
      '| files | 60 | 1,000 | 900', '| stream | 60 | 800 | 900', '| lazy | 60 | 800 | 900',
    ]);
  });

  it('sets the mechanisms side by side in their own section', () => {
    const table = section('## Mechanisms side by side').split('\n').filter((l) => l.startsWith('| '));
    expect(table[0]).toBe('| state | mechanism | n | total | freeze | checkpoint | transfer | restore | lazy phase | downtime | observed downtime |');
    expect(table.slice(2).map((l) => l.split(' | ').slice(0, 4).join(' | '))).toEqual(['| 256 MiB | files | 2 | 5,000', '| 256 MiB | stream | 2 | 3,000', '| 256 MiB | lazy | 2 | 5,000']);
    expect(table[4]).toContain('| 1,800 |');
  });

  it('compares with the papers from the baseline, and holds each mechanism against the freeze and total targets', () => {
    const cmp = paperComparison({ rows, summary, ratios: ratios(summary) });
    const by = (source: string) => cmp.find((c) => c.source === source)!.ours;
    expect(md).toContain('From the `files` runs, except where a line names a mechanism.');
    expect(by('SHADOW 2026, 10 msg/s')).toContain('shadow total 1.00 s');
    expect(by('Paguro 2026')).toContain('shadow (lazy) median freeze 90 ms');
    expect(by('Paguro 2026')).toContain('shadow (files) median freeze 150 ms');
    expect(by('Optimisation notes (total)')).toContain('shadow (stream) median total 0.80 s');
  });

  it('says the one mechanism in the text and draws no column or comparison for it', () => {
    const one = rows.filter((x) => x.mechanism === 'stream');
    const s = summarize(one);
    const text = renderMarkdownReport({ rows: one, summary: s, ratios: ratios(s), plots: [], machine: 'm' });
    expect(text.split('\n')[0]).toBe('# ms2m benchmark: stop-and-copy vs shadow');
    expect(text).toContain('Every run moved its image by `stream`.');
    expect(text).not.toContain('| mechanism |');
    expect(text).not.toContain('## Mechanisms side by side');
    expect(text).not.toContain('From the `');
  });
});

describe("the machine's limits, per mechanism", () => {
  const mb = (n: number) => n * 2 ** 20;
  const limit = { stateBytes: mb(256), imageBytes: mb(256), dumpMs: 1000, dumpFrozenMs: 800, restoreMs: 200, copyHashMs: 500, copyHashMBps: 512, rabbitRttMs: 0.25 };
  const common = { state_bytes: mb(256), checkpoint_bytes: mb(256), downtime_ms: 10, restore_ms: 300 };
  const runs = [
    row({ ...common, mechanism: 'files', checkpoint_ms: 1500, freeze_ms: 1200, transfer_ms: 1000 }),
    row({ ...common, mechanism: 'stream', checkpoint_ms: 2000, freeze_ms: 1600, transfer_ms: 8, streamed_bytes: mb(250) }),
    row({ ...common, mechanism: 'lazy', checkpoint_ms: 1400, freeze_ms: 1100, transfer_ms: 100, restore_ms: 100, lazy_bytes: mb(200), lazy_ms: 2000 }),
    // Not counted: another size, another strategy.
    row({ ...common, mechanism: 'lazy', state_bytes: mb(10), lazy_ms: 99_999 }),
    row({ ...common, mechanism: 'files', strategy: 'stop-and-copy', transfer_ms: 99_999 }),
  ];

  it('gives every figure of each mechanism against the bare limits, with the lazy phase and the streamed pages said', () => {
    const { head, body } = limitsTable([limit], runs);
    expect(head).toEqual(['state', 'mechanism', 'what', 'limit', 'in the migration (median)', 'ratio']);
    expect(body).toEqual([
      ['256 MiB', 'files', 'checkpoint vs bare criu dump', '1,000 ms (256 MiB image)', '1,500 ms', '1.5×'],
      ['256 MiB', 'files', "freeze vs the bare dump's frozen time", '800 ms', '1,200 ms', '1.5×'],
      ['256 MiB', 'files', 'transfer phase vs copy + SHA-256 of the image', '500 ms (512 MB/s)', '1,000 ms (256 MB/s)', '2.0×'],
      ['256 MiB', 'files', 'restore vs bare criu restore', '200 ms', '300 ms', '1.5×'],
      ['256 MiB', 'files', 'downtime vs one RabbitMQ round trip', '0.25 ms', '10 ms', '40.0×'],
      ['256 MiB', 'stream', 'checkpoint vs bare criu dump', '1,000 ms (256 MiB image)', '2,000 ms', '2.0×'],
      ['256 MiB', 'stream', "freeze vs the bare dump's frozen time", '800 ms', '1,600 ms', '2.0×'],
      ['256 MiB', 'stream', 'transfer phase vs copy + SHA-256 of the image', '500 ms (512 MB/s)', '8.0 ms (32,000 MB/s; the pages, 250 MiB, travel inside the checkpoint phase)', '0.0×'],
      ['256 MiB', 'stream', 'restore vs bare criu restore', '200 ms', '300 ms', '1.5×'],
      ['256 MiB', 'stream', 'downtime vs one RabbitMQ round trip', '0.25 ms', '10 ms', '40.0×'],
      ['256 MiB', 'lazy', 'checkpoint vs bare criu dump', '1,000 ms (256 MiB image)', '1,400 ms', '1.4×'],
      ['256 MiB', 'lazy', "freeze vs the bare dump's frozen time", '800 ms', '1,100 ms', '1.4×'],
      ['256 MiB', 'lazy', 'transfer phase vs copy + SHA-256 of the image', '500 ms (512 MB/s)', '100 ms (2,560 MB/s; 200 MiB left for the lazy phase)', '0.2×'],
      ['256 MiB', 'lazy', 'restore vs bare criu restore', '200 ms', '100 ms', '0.5×'],
      ['256 MiB', 'lazy', 'lazy phase vs copy + SHA-256 of the image', '500 ms (512 MB/s)', '2,000 ms (100 MB/s)', '4.0×'],
      ['256 MiB', 'lazy', 'downtime vs one RabbitMQ round trip', '0.25 ms', '10 ms', '40.0×'],
    ]);
  });

  it('leaves out the freeze line for limits measured before the frozen time was recorded', () => {
    const { dumpFrozenMs: _, ...older } = limit;
    const { head, body } = limitsTable([older], runs.filter((r) => r.mechanism === 'files'));
    expect(head).toEqual(['state', 'what', 'limit', 'in the migration (median)', 'ratio']);
    expect(body.map((r) => r[1])).toEqual([
      'checkpoint vs bare criu dump', 'transfer phase vs copy + SHA-256 of the image', 'restore vs bare criu restore', 'downtime vs one RabbitMQ round trip',
    ]);
  });

  it('prints the section in the report', () => {
    const s = summarize(runs);
    const md = renderMarkdownReport({ rows: runs, summary: s, ratios: ratios(s), plots: [], machine: 'm', limits: [limit] });
    expect(md).toContain("## Against the machine's limits");
    expect(md).toContain('| 256 MiB | lazy | lazy phase vs copy + SHA-256 of the image | 500 ms (512 MB/s) | 2,000 ms (100 MB/s) | 4.0× |');
    expect(md).toContain('read once in 4 MiB chunks');
  });
});
