/**
 * The program cli/main.ts runs: every command registered from its module under cli/commands/, in the
 * order `ms2m --help` has always listed them, with the options users and scripts rely on; and each
 * command module has its own test file here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { CommanderError, type Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../../cli/program';

const CLI = path.resolve(__dirname, '../../../cli');

const program = () => {
  let out = '';
  const p = buildProgram((root) => root.exitOverride().configureOutput({ writeOut: (s) => void (out += s), writeErr: (s) => void (out += s) }));
  return { p, out: () => out };
};

/** A command's options as `flags=default`. */
const shape = (c: Command) => c.options.map((o) => (o.defaultValue === undefined ? o.flags : `${o.flags}=${JSON.stringify(o.defaultValue)}`));
const find = (p: Command, name: string) => p.commands.find((c) => c.name() === name)!;

describe('ms2m', () => {
  it('has every command, in the order of its help', () => {
    const { p } = program();
    expect(p.commands.map((c) => c.name())).toEqual([
      'demo', 'stack', 'orchestrator', 'agent', 'chaos', 'load', 'migrate', 'deploy', 'undeploy', 'rebalance', 'drain', 'cordon', 'uncordon', 'schedule', 'migrations', 'watch',
    ]);
    expect(find(p, 'schedule').commands.map((c) => c.name())).toEqual(['create', 'list', 'describe', 'pause', 'unpause', 'trigger', 'delete']);
  });

  it('keeps the options of the commands that scripts and the README use', () => {
    const { p } = program();
    expect(shape(find(p, 'migrate'))).toEqual([
      '--service <name>', '--to <node>', '--strategy <name>="shadow"', '--transfer <mode>="files"', '--lazy', '--threshold <msgs>=10', '--cutoff-ms <ms>=120000', '--stall-ms <ms>=3000', '--json',
    ]);
    expect(shape(find(p, 'deploy'))).toEqual([
      '--service <name>', '--node <node>', '--queue <primaryQueue>', '--env <K=V>={}', '--cwd <dir>', '--ready-ms <ms>', '--workload <Kind/name>', '--namespace <ns>="default"', '--container <name>="app"', '--json',
    ]);
    expect(shape(find(p, 'demo')).filter((f) => !f.startsWith('--runtime'))).toEqual([
      '--strategy <name>="shadow"', '--transfer <mode>="files"', '--lazy', '--rate <msgs>=50', '--service <name>="game"', '--producers <n>', '--state-mb <mb>=8', '--work-ms <ms>=0',
      '--threshold <msgs>=10', '--cutoff-ms <ms>=120000', '--stall-ms <ms>=3000', '--json', '--keep', '--observe',
    ]);
    expect(shape(find(p, 'watch'))).toEqual(['--service <name>', '--once', '--until-done', '--interval <duration>=500']);
    expect(shape(find(p, 'migrations'))).toEqual(['--service <name>', '--node <name>', '--phase <stage>', '--running', '--limit <n>=50', '--json']);
  });

  it('applies what `configure` sets to every command: a test sees errors instead of an exit', async () => {
    const { p, out } = program();
    await expect(p.parseAsync(['migrate', '--service', 'game'], { from: 'user' })).rejects.toThrow(CommanderError);
    expect(out()).toContain("error: required option '--to <node>' not specified");
    await expect(p.parseAsync(['teleport'], { from: 'user' })).rejects.toThrow("error: unknown command 'teleport'");
  });
});

describe('the layout', () => {
  const modules = readdirSync(path.join(CLI, 'commands')).filter((f) => f.endsWith('.ts') && f !== 'context.ts');

  it('cli/main.ts only runs the program: the commands live in cli/commands/', () => {
    const main = readFileSync(path.join(CLI, 'main.ts'), 'utf8');
    expect(main).not.toMatch(/\.command\(|\.option\(/);
    expect(modules.length).toBeGreaterThanOrEqual(15);
  });

  it.each(readdirSync(path.join(CLI, 'commands')).filter((f) => f.endsWith('.ts') && f !== 'context.ts'))('%s registers its command and has its own tests', (file) => {
    const text = readFileSync(path.join(CLI, 'commands', file), 'utf8');
    expect(text).toMatch(/export function register[A-Z]\w*\(program: Command/);
    expect(readdirSync(__dirname)).toContain(file.replace(/\.ts$/, '.test.ts'));
  });
});
