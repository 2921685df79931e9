// `make run` on a built tree starts at once: `make build` redoes a step only when one of its
// inputs changed (issue 13: it re-ran tsc every time, 4.4 s). Asked with `make -n` (print,
// do not run), so the test changes nothing; jest runs after `make build`.
import { execFileSync } from 'node:child_process';
import { ROOT } from '../helpers/proc';

const dryRun = (...args: string[]) => execFileSync('make', ['--no-print-directory', '-n', ...args, 'build'], { cwd: ROOT, encoding: 'utf8' });

describe('make build on a built tree', () => {
  test('runs neither tsc nor esbuild when nothing changed', () => {
    const out = dryRun();
    expect(out).not.toMatch(/tsc|esbuild|node-gyp/);
  });

  test('runs tsc and then esbuild when a source file changed, and the native build only for C', () => {
    const ts = dryRun('-W', 'src/version.ts');
    expect(ts).toMatch(/tsc -p tsconfig\.json[\s\S]*esbuild[\s\S]*dist\/bundle\/baton\.js/);
    expect(ts).not.toMatch(/node-gyp|build:native/);
    expect(dryRun('-W', 'src/native/baton_native.c')).toMatch(/build:native[\s\S]*tsc[\s\S]*esbuild/);
  });
});
