// execve()'s limit as the kernel computes it from the stack limit, asked in-process
// (sysconf in the addon): `check` runs in the master on every reload and at every start.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { argMax } from '../../src/config/exec-limits';
import { ROOT } from '../helpers/proc';

describe('argMax', () => {
  test('is within the kernel bounds, whatever the stack limit', () => {
    expect(argMax()).toBeGreaterThanOrEqual(131072);
    expect(argMax()).toBeLessThanOrEqual(6 * 1024 * 1024);
  });

  // a process of its own for each stack limit: the limit is the one its workers would inherit
  const argMaxUnder = (stack: string): number =>
    Number(
      execFileSync('sh', ['-c', `ulimit -s ${stack} && exec "$0" -e "$1"`, process.execPath, `console.log(require(${JSON.stringify(path.join(ROOT, 'dist', 'config', 'exec-limits.js'))}).argMax())`], {
        encoding: 'utf8',
      }),
    );

  test('follows the stack limit (ulimit -s) as execve() does: a quarter of it, within the kernel bounds', () => {
    expect(argMaxUnder('1024')).toBe(262144);
    expect(argMaxUnder('16384')).toBe(4 * 1024 * 1024);
    expect(argMaxUnder('unlimited')).toBe(6 * 1024 * 1024);
    expect(argMaxUnder('256')).toBe(131072);
  });
});
