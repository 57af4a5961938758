/**
 * The runtime port holds only if nobody reaches past it: outside each runtime's folder (and the test
 * harness) nothing imports a runtime's code except the registry, the runtimes share code only through
 * runtimes/shared/, and the workflows import the port and the activities by type only. Read from the
 * sources' import statements.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');
const SOURCES = ['activities', 'bench', 'chaos', 'cli', 'examples', 'lib', 'runtimes', 'sdk', 'service', 'workers', 'workflows'];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

interface Import {
  from: string;
  to: string;
  typeOnly: boolean;
}

const IMPORT = /(?:^|\n)\s*(import|export)\s+(type\s+)?(?:[^'"]*?\s+from\s+)?['"](\.[^'"]+)['"]|require\(\s*['"](\.[^'"]+)['"]\s*\)/g;

function importsOf(file: string): Import[] {
  const text = readFileSync(file, 'utf8');
  const out: Import[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[3] ?? m[4];
    out.push({ from: path.relative(ROOT, file), to: path.relative(ROOT, path.resolve(path.dirname(file), spec)), typeOnly: Boolean(m[2]) });
  }
  return out;
}

const all = SOURCES.flatMap((d) => files(path.join(ROOT, d))).flatMap(importsOf);

describe('layering', () => {
  it('finds the imports it checks', () => {
    // A parser that matched nothing would pass every rule below.
    expect(all.filter((i) => i.to.startsWith('runtimes/local')).length).toBeGreaterThan(5);
    expect(all.filter((i) => i.from.startsWith('workflows/')).length).toBeGreaterThan(10);
  });

  it('only runtimes/local/ and the registry import the local runtime', () => {
    const leaks = all.filter((i) => i.to.startsWith('runtimes/local') && !i.from.startsWith('runtimes/local/') && i.from !== 'runtimes/index.ts');
    expect(leaks.map((i) => `${i.from} → ${i.to}`)).toEqual([]);
  });

  it('only runtimes/kubernetes/ and the registry import the kubernetes runtime', () => {
    expect(all.filter((i) => i.to.startsWith('runtimes/kubernetes')).length).toBeGreaterThan(5);
    const leaks = all.filter((i) => i.to.startsWith('runtimes/kubernetes') && !i.from.startsWith('runtimes/kubernetes/') && i.from !== 'runtimes/index.ts');
    expect(leaks.map((i) => `${i.from} → ${i.to}`)).toEqual([]);
  });

  it('the two runtimes do not import each other', () => {
    const across = all.filter((i) => (i.from.startsWith('runtimes/local/') && i.to.startsWith('runtimes/kubernetes')) || (i.from.startsWith('runtimes/kubernetes/') && i.to.startsWith('runtimes/local')));
    expect(across.map((i) => `${i.from} → ${i.to}`)).toEqual([]);
  });

  it('the workflows import activities and the runtime port by type only', () => {
    const values = all.filter((i) => i.from.startsWith('workflows/') && /^(activities|runtimes)\//.test(i.to) && !i.typeOnly && !/^runtimes\/(spec|runtime-names)$/.test(i.to));
    expect(values.map((i) => `${i.from} → ${i.to}`)).toEqual([]);
  });

  it('the port and the registry depend on no runtime', () => {
    const port = all.filter((i) => /^runtimes\/(types|spec|runtime-names|placement)\.ts$/.test(i.from) && /^runtimes\/(local|kubernetes)/.test(i.to));
    expect(port.map((i) => `${i.from} → ${i.to}`)).toEqual([]);
  });
});
