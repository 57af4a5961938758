/** The shared value parsers of cli/options.ts: numbers and durations read by zod schemas, their refusals in the option's terms. */
import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { duration, mechanismList, nonNegative, num, positive, workloadList } from '../../../cli/options';

const refusal = (parse: (v: string) => unknown, value: string): string => {
  try {
    parse(value);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return (err as Error).message;
  }
  throw new Error(`${JSON.stringify(value)} was accepted`);
};

describe('positive', () => {
  it('reads decimal numbers, with fractions and exponents', () => {
    expect(positive('--rate')('50')).toBe(50);
    expect(positive('--rate')(' 2.5 ')).toBe(2.5);
    expect(positive('--rate')('1e3')).toBe(1000);
    expect(positive('--rate', true)('1e3')).toBe(1000);
  });
  it.each(['0', '-1', 'abc', '', ' ', '0x10', 'Infinity', '5msgs', 'NaN'])('refuses %j, naming the option and an example', (v) => {
    expect(refusal(positive('--rate'), v)).toBe('--rate must be a positive number, e.g. 50');
  });
  it('refuses fractions where a whole number is needed', () => {
    expect(refusal(positive('--producers', true), '2.5')).toBe('--producers must be a positive integer, e.g. 50');
  });
});

describe('nonNegative', () => {
  it('reads whole numbers from 0', () => {
    expect(nonNegative('--threshold')('0')).toBe(0);
    expect(nonNegative('--threshold')('120000')).toBe(120_000);
  });
  it.each(['-1', '1.5', 'ten', '', '0x1'])('refuses %j', (v) => {
    expect(refusal(nonNegative('--cutoff-ms', '120000'), v)).toBe('--cutoff-ms must be a whole number ≥ 0, e.g. 120000');
  });
});

describe('num', () => {
  it('checks only that it is a number: the workflow input schema checks the range', () => {
    expect(num('--ready-ms', '20000')('5')).toBe(5);
    expect(num('--band', '0.2')('-0.5')).toBe(-0.5);
    expect(refusal(num('--ready-ms', '20000'), 'soon')).toBe('--ready-ms must be a number, e.g. 20000');
  });
});

describe('duration', () => {
  const every = duration('--every', { min: 1000, example: '10m, 90s, 1h' });
  it('reads a number and a unit into milliseconds', () => {
    expect(every('90s')).toBe(90_000);
    expect(every('10m')).toBe(600_000);
    expect(every('1.5h')).toBe(5_400_000);
    expect(every('1d')).toBe(86_400_000);
    expect(every('2500ms')).toBe(2500);
    expect(every(' 2 s ')).toBe(2000);
  });
  it('refuses a number without its unit, an unknown unit, and too short an interval', () => {
    expect(refusal(every, '600000')).toBe('--every must be a duration of at least 1 s, e.g. 10m, 90s, 1h (a number and a unit: ms, s, m, h or d)');
    expect(refusal(every, '10 minutes')).toMatch(/^--every must be a duration of at least 1 s/);
    expect(refusal(every, '500ms')).toBe('--every must be a duration of at least 1 s, e.g. 10m, 90s, 1h');
  });
  it('and one above its maximum', () => {
    const interval = duration('--interval', { min: 100, max: 60_000, example: '500ms' });
    expect(interval('250ms')).toBe(250);
    expect(refusal(interval, '2m')).toBe('--interval must be a duration of at least 100 ms and at most 60 s, e.g. 500ms');
  });
});

describe('lists', () => {
  it('services and mechanisms, comma-separated, refusing unknown names with the choices', () => {
    expect(workloadList('game, ledger')).toEqual(['game', 'ledger']);
    expect(refusal(workloadList, 'game,chess')).toBe('unknown service(s) chess; choose from game, ledger');
    expect(mechanismList('files,stream+lazy')).toEqual(['files', 'stream+lazy']);
    expect(refusal(mechanismList, '')).toBe('--mechanisms: unknown (none given); choose from files, stream, lazy, stream+lazy');
  });
});
