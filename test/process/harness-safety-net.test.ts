// The safety net itself (test/helpers/environment.js, make test's subreaper): a test file
// that passes but leaves processes behind fails the run, names them, and they are gone
// afterwards; the run ends instead of hanging on a leftover that holds its pipes.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/proc';

function running(marker: string): number[] {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
    try {
      return fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').includes(marker);
    } catch {
      return false;
    }
  }).map(Number);
}

test('a test file that leaves processes behind fails, naming them, and they are killed', async () => {
  const marker = String(900000 + (process.pid % 90000));
  const next = String(Number(marker) + 1);
  const jest = path.join(ROOT, 'node_modules', '.bin', 'jest');
  const config = path.join(ROOT, 'test', 'fixtures', 'leaky', 'jest.config.js');
  // as make test runs it: under the subreaper, which adopts the double-forked orphan
  const p = spawn('python3', [path.join(ROOT, 'test', 'helpers', 'subreaper.py'), '--kill-leftovers', jest, '--ci', '-c', config], {
    env: { ...process.env, LEAKY_MARKER: marker, BATON_TEST_REAPER: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (out += d));
  const killer = setTimeout(() => p.kill('SIGKILL'), 60000);
  const code = await new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  clearTimeout(killer);
  expect(out).toMatch(/left processes behind/);
  expect(out).toContain(`sleep ${marker}`);
  expect(out).toContain(`sleep ${next}`);
  expect(code).not.toBe(0);
  expect(running(marker)).toEqual([]);
  expect(running(next)).toEqual([]);
});
