// Imports inside src/ run only downwards: contract/ and system/ (with native/, the addon's typed
// wrapper) are the ground floor and import nothing above it; the client never enters the
// master; the config stands on the ground floor alone (what reads it: the sockets, the pool, the
// master, sits above it).
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const SRC = path.join(__dirname, '..', '..', 'src');

/** Every .ts file of src/ (node-gyp's build folder left out), relative to src/. */
function sources(dir = SRC): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return p === path.join(SRC, 'native', 'build') ? [] : sources(p);
    return e.name.endsWith('.ts') ? [path.relative(SRC, p)] : [];
  });
}

/** The first folder under src/ of a path relative to src/ ("version.ts" for a file at the top). */
const floorOf = (rel: string) => rel.split('/')[0];

/** Every import of src/, as [file, the src/ folder it imports], read by TypeScript's own scanner (import(), require() and export … from included). */
function imports(): [string, string][] {
  return sources().flatMap((file) => {
    const text = fs.readFileSync(path.join(SRC, file), 'utf8');
    return ts
      .preProcessFile(text, true, true)
      .importedFiles.map((f) => f.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec): [string, string] => [file, floorOf(path.relative(SRC, path.resolve(SRC, path.dirname(file), spec)))]);
  });
}

/** Folder -> whether it may not import a src/ folder (its own is always allowed). */
const NEVER: Record<string, (to: string) => boolean> = {
  contract: (to) => to !== 'system' && to !== 'native',
  system: (to) => to !== 'native',
  native: () => true,
  control: (to) => to === 'master' || to === 'cli',
  config: (to) => !['contract', 'system', 'native'].includes(to),
  // the metrics endpoint reads what the master hands it; the master loads it only when configured
  metrics: (to) => !['contract', 'system', 'native', 'config', 'sockets'].includes(to),
};

describe('imports inside src/ run downwards', () => {
  const all = imports();

  test('the scanner sees the imports (a positive control: the master imports the pool and the contract)', () => {
    expect(all).toContainEqual(['master/master.ts', 'pool']);
    expect(all).toContainEqual(['master/master.ts', 'contract']);
    expect(all.some(([f]) => floorOf(f) === 'contract')).toBe(true);
  });

  test.each(Object.keys(NEVER))('%s/ imports nothing it must not', (floor) => {
    const up = all.filter(([file, to]) => floorOf(file) === floor && to !== floor && NEVER[floor](to));
    expect(up.map(([file, to]) => `src/${file} imports ${to}/`)).toEqual([]);
  });
});
