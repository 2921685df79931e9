// execve()'s limit is computed once per process: `check` runs in the master on every reload,
// and asking getconf each time would spawn a process there each time.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { argMax } from '../src/config/exec-limits';
import { ROOT, tmpdir } from './helpers/proc';

describe('argMax', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  test('is within the kernel bounds, whatever the stack limit', () => {
    expect(argMax()).toBeGreaterThanOrEqual(131072);
    expect(argMax()).toBeLessThanOrEqual(6 * 1024 * 1024);
  });

  test('asks getconf once per process: a getconf that now answers otherwise is not asked', () => {
    const first = argMax();
    const other = first > 1_000_000 ? 1_000_000 : 2_000_000;
    dir = tmpdir();
    fs.writeFileSync(path.join(dir, 'getconf'), `#!/bin/sh\necho ${other}\n`, { mode: 0o755 });
    // in a process of its own: jest's process.env is not the environment a spawn sees
    const script = `const { argMax } = require(${JSON.stringify(path.join(ROOT, 'dist', 'config', 'exec-limits.js'))});
      const first = argMax();
      process.env.PATH = process.argv[1] + ':' + process.env.PATH;
      console.log(JSON.stringify([first, argMax()]));`;
    const [before, after] = JSON.parse(execFileSync(process.execPath, ['-e', script, dir], { encoding: 'utf8' }));
    expect(before).toBe(first);
    expect(after).toBe(first);
  });
});
