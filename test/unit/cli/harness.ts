/**
 * Running one command module's command in a test: a program that throws instead of exiting
 * (exitOverride) and collects what commander writes (configureOutput), and an Io that records lines
 * and exit codes instead of printing and exiting.
 */
import { Command, CommanderError } from 'commander';
import type { Io, OutStream, SdkDeps } from '../../../cli/commands/context';

export interface FakeStream extends OutStream {
  text: string;
}

export const fakeStream = (isTTY = false): FakeStream => {
  const s: FakeStream = {
    text: '',
    isTTY,
    columns: 120,
    rows: 40,
    write(t: string) {
      s.text += t;
      return true;
    },
  };
  return s;
};

export interface FakeIo extends Io {
  outLines: string[];
  errLines: string[];
  exits: number[];
  stdout: FakeStream;
  stderr: FakeStream;
}

export function fakeIo(o: { tty?: boolean } = {}): FakeIo {
  const io: FakeIo = {
    outLines: [],
    errLines: [],
    exits: [],
    out: (l) => void io.outLines.push(l),
    err: (l) => void io.errLines.push(l),
    exit: (code) => void io.exits.push(code),
    stdout: fakeStream(o.tty),
    stderr: fakeStream(o.tty),
  };
  return io;
}

/** An Io with `connect` resolving to `client` (a fake of the SDK methods the command uses). */
export function sdk<C>(client: C, o: { tty?: boolean } = {}): FakeIo & SdkDeps<C> {
  return { ...fakeIo(o), connect: async () => client };
}

export interface Parsed {
  /** What commander refused, if it did (its message names the option and the rule). */
  error?: CommanderError;
  /** What commander wrote: help, and errors with the help after them. */
  stdout: string;
  stderr: string;
}

/** Parses `args` (as after `ms2m`) with the commands `register` adds, running the action. */
export async function run(register: (program: Command) => unknown, args: string[]): Promise<Parsed> {
  const parsed: Parsed = { stdout: '', stderr: '' };
  const program = new Command('ms2m')
    .exitOverride()
    .configureOutput({ writeOut: (s) => void (parsed.stdout += s), writeErr: (s) => void (parsed.stderr += s) })
    .showHelpAfterError();
  register(program);
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    parsed.error = err;
  }
  return parsed;
}

/** The error commander gives for a bad option value: "error: option '<flags>' argument '<value>' is invalid. <rule>". */
export const invalidArgument = (flags: string, value: string, rule: string) => `error: option '${flags}' argument '${value}' is invalid. ${rule}`;

/**
 * What a terminal shows after `text`: enough of one to replay what cli-progress writes (cursor up, down
 * and to a column, clearing to the end of the line or the screen, newlines; modes ignored).
 */
export function screenOf(text: string): string[] {
  const rows: string[][] = [[]];
  let row = 0;
  let col = 0;
  const line = () => (rows[row] ??= []);
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\x1b') {
      const m = /^\x1b\[(\??)(\d*)([A-Za-z])/.exec(text.slice(i));
      if (!m) throw new Error(`unknown escape at ${JSON.stringify(text.slice(i, i + 8))}`);
      i += m[0].length - 1;
      const n = m[2] === '' ? undefined : Number(m[2]);
      if (m[1] === '?') continue; // cursor shown or hidden, line wrapping
      if (m[3] === 'A') row = Math.max(0, row - (n ?? 1));
      else if (m[3] === 'B') row += n ?? 1;
      else if (m[3] === 'G') col = (n ?? 1) - 1;
      else if (m[3] === 'K') (n ?? 0) === 0 ? line().splice(col) : (rows[row] = []);
      else if (m[3] === 'J') rows.splice(row + 1), line().splice(col);
      else throw new Error(`unknown escape ${m[0]}`);
    } else if (ch === '\n') {
      row++;
      col = 0;
    } else if (ch === '\r') col = 0;
    else {
      const l = line();
      while (l.length < col) l.push(' ');
      l[col++] = ch;
    }
  }
  return Array.from({ length: rows.length }, (_, r) => (rows[r] ?? []).join('').trimEnd()).join('\n').replace(/\n+$/, '').split('\n');
}
