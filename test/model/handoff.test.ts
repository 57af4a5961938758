/**
 * The exactly-once handoff, model-checked: runs infra/model.sh (spin on model/handoff.pml, installing spin when
 * missing) and reads the JSON summary it writes. Every property of the correct model must hold after a complete
 * search; every mutant (a known bug put back into the model, among them the model's own findings F1 and F2, now
 * fixed) must yield a counterexample, with its trail written as protocol steps; so must the witnesses (the F1 and
 * F2 interleavings are reachable in the correct model, which adopts there).
 * See model/README.md.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');

interface Check {
  name: string;
  kind: 'property' | 'liveness' | 'liveness-fair' | 'mutant' | 'witness' | 'finding';
  states: number;
  result: 'holds' | 'counterexample';
  expected: 'holds' | 'counterexample';
  ok: boolean;
  seconds: number;
  complete: boolean;
  violated: string;
  trail: string;
}
interface Summary {
  model: string;
  totalSeconds: number;
  ok: boolean;
  checks: Check[];
}

const PROPERTIES = ['no_dup', 'no_loss', 'swap_exact', 'outputs_once', 'one_consumer', 'terminates'];
const MUTANTS = [
  'mutant_A_per_producer_bound',
  'mutant_B_log_after_checkpoint',
  'mutant_C_no_catch_up',
  'mutant_D_activate_before_fence',
  'mutant_E_no_epoch_check',
  // and two that show no_dup and terminates are not vacuous either
  'mutant_M_no_mark_skip',
  'mutant_T_no_fence_timeout',
  // the gap the model found (F1), fixed in the workflow (patch adopt-if-source-dead-at-rollback), put back
  'mutant_F1_rollback_when_source_dead',
  // the gap the model found next (F2), fixed the same way (the rollback unfences the source first), put back
  'mutant_F2_look_then_stop',
];

let out: string;
let summary: Summary;
let stdout = '';
let exitCode = 0;

beforeAll(async () => {
  out = mkdtempSync(path.join(os.tmpdir(), 'ms2m-model-test-'));
  try {
    const r = await promisify(execFile)('bash', [path.join(ROOT, 'infra/model.sh')], {
      cwd: ROOT,
      env: { ...process.env, MODEL_OUT: out },
      maxBuffer: 16 * 1024 * 1024,
    });
    stdout = r.stdout;
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    exitCode = e.code ?? 1;
    stdout = e.stdout ?? '';
    if (!existsSync(path.join(out, 'summary.json'))) throw new Error(`infra/model.sh failed (exit ${exitCode}) without a summary:\n${e.stderr ?? ''}`);
  }
  summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as Summary;
}, 600_000);

afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

const check = (name: string): Check => {
  const c = summary.checks.find((x) => x.name === name);
  if (!c) throw new Error(`no check ${name} in the summary: ${summary.checks.map((x) => x.name).join(', ')}`);
  return c;
};

describe('model/handoff.pml under spin', () => {
  it('the runner succeeds and prints the table', () => {
    expect(exitCode).toBe(0);
    expect(summary.ok).toBe(true);
    expect(stdout).toMatch(/check\s+kind\s+states\s+result\s+time\s+verdict/);
    for (const c of summary.checks) expect(stdout).toMatch(new RegExp(`^${c.name}\\s+${c.kind}\\s+${c.states}\\s+${c.result}`, 'm'));
  });

  it.each(PROPERTIES)('the correct model satisfies %s, by a complete search', (name) => {
    const c = check(name);
    expect(c.result).toBe('holds');
    expect(c.complete).toBe(true);
    expect(c.states).toBeGreaterThan(100_000);
  });

  it.each(MUTANTS)('%s yields a counterexample, written as protocol steps', (name) => {
    const c = check(name);
    expect(c.result).toBe('counterexample');
    expect(c.violated).not.toBe('');
    const steps = readFileSync(c.trail, 'utf8');
    expect(steps).toMatch(/^!! /m);
  });

  it('the per-producer bound (before the order fix) shows a cross-producer divergence', () => {
    const c = check('mutant_A_per_producer_bound');
    expect(c.violated).toMatch(/caught-up copy differs/);
    expect(readFileSync(c.trail, 'utf8')).toMatch(/exchange routes p\d#\d to R/);
  });

  it('finding F1 put back (a rollback that finds the source dead stops the copy and deletes R) loses a message', () => {
    const c = check('mutant_F1_rollback_when_source_dead');
    expect(c.kind).toBe('mutant');
    expect(c.result).toBe('counterexample');
    const steps = readFileSync(c.trail, 'utf8');
    expect(steps).toMatch(/source CRASHES[\s\S]*(catch-up timeout|cancelled)[\s\S]*rollback: copy stopped[\s\S]*R deleted: ROLLED BACK/);
    expect(steps).toMatch(/^!! m\d \(p\d#\d\) is lost/m);
  });

  it.each([
    ['witness_F1_adopt_after_timeout', /catch-up timeout/],
    ['witness_F1_adopt_after_cancel', /cancelled during the replay/],
  ] as const)('%s: the correct model reaches the F1 interleaving and adopts instead of rolling back', (name, cause) => {
    const c = check(name);
    expect(c.kind).toBe('witness');
    expect(c.result).toBe('counterexample');
    const steps = readFileSync(c.trail, 'utf8');
    expect(steps).toMatch(cause);
    expect(steps).toMatch(/source CRASHES[\s\S]*at rollback the source is gone and its copy lives: adopt instead[\s\S]*R sealed[\s\S]*ADOPTED/);
    expect(steps).not.toMatch(/rollback: copy stopped|^!! /m);
  });

  it('finding F2 put back (look whether the source lives, then stop the copy and delete R, without unfencing first) loses a message', () => {
    const c = check('mutant_F2_look_then_stop');
    expect(c.kind).toBe('mutant');
    expect(c.result).toBe('counterexample');
    const steps = readFileSync(c.trail, 'utf8');
    expect(steps).not.toMatch(/unfences the source first/);
    // the look found it alive; it dies before R is deleted (before or after the copy is stopped), still fenced
    expect(steps).toMatch(/at rollback the source lives[^\n]*\n(?![\s\S]*adopt instead)(?![\s\S]*source unfenced)[\s\S]*source CRASHES[\s\S]*ROLLED BACK[\s\S]*is lost/);
    expect(steps).toMatch(/rollback: copy stopped/);
  });

  it('witness_F2_adopt_when_source_dies_in_rollback: the source dies once the rollback started, its unfence gets no answer, the copy adopts', () => {
    const c = check('witness_F2_adopt_when_source_dies_in_rollback');
    expect(c.kind).toBe('witness');
    expect(c.result).toBe('counterexample');
    const steps = readFileSync(c.trail, 'utf8');
    expect(steps).toMatch(/(catch-up timeout|cancelled during the replay)[\s\S]*source CRASHES[\s\S]*unfences the source first: no answer[\s\S]*adopt instead[\s\S]*R sealed[\s\S]*ADOPTED/);
    expect(steps).not.toMatch(/rollback: copy stopped|^!! /m);
  });

  it('no open finding is recorded (F1 and F2 are fixed)', () => {
    expect(summary.checks.filter((x) => x.kind === 'finding')).toEqual([]);
  });
});
