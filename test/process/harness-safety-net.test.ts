// The safety net itself (test/helpers/environment.js, make test's subreaper): a test file
// that passes but leaves processes behind fails the run, names them, and they are gone
// afterwards; the run ends instead of hanging on a leftover that holds its pipes. And the
// clean-up of a service under a subreaper (helpers/service.ts) leaves nothing running.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { batonAsync, childrenOf, isAlive, ROOT, waitFor } from '../helpers/proc';
import { descendants, startService, stopService, type Service } from '../helpers/service';

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

describe("service.ts's stopService, the clean-up after a test that failed mid-upgrade", () => {
  let svc: Service | undefined;
  afterEach(async () => {
    // the test's own clean-up is the subject; this one only for a test that failed before it
    await stopService(svc);
    svc = undefined;
  });

  /** Two masters serving side by side (manual mode), the successor re-parented to the subreaper; the `processes` of the service once all run. */
  async function sideBySide(workerCommand: string[], stopTimeoutMs: number, processes: number): Promise<number[]> {
    svc = await startService({ name: 'net', upgrade: { mode: 'manual' }, workers: { command: workerCommand, ready: 'spawn', count: 1, stopTimeoutMs } });
    const old = svc.master();
    expect((await batonAsync(['upgrade', '-c', svc.cfg])).code).toBe(0);
    const succ = svc.master();
    const all = await waitFor(`the ${processes} processes of the service`, () => {
      const now = descendants(svc!.m.pid);
      return now.length === processes && now;
    });
    expect(childrenOf(svc.m.pid).sort()).toEqual([old, succ].sort());
    return all;
  }

  test('both masters stop (SIGTERM) and their workers with them; then the subreaper exits: nothing left', async () => {
    const all = await sideBySide(['sleep', '600'], 5000, 2 + 2);
    await stopService(svc);
    expect(all.filter(isAlive)).toEqual([]);
    expect(await svc!.m.exited).toEqual({ code: 0, signal: null });
  });

  test('masters that do not stop within the grace: every process SIGKILLed, a worker\'s own children too; then the subreaper exits', async () => {
    // a worker that ignores SIGTERM, and a child of its own: its master waits 60 s for it
    const all = await sideBySide(['sh', '-c', "trap '' TERM; sleep 600 & wait; wait"], 60000, 2 + 2 * 2);
    await stopService(svc, 1000);
    expect(all.filter(isAlive)).toEqual([]);
    expect((await svc!.m.exited).code).not.toBeNull();
  });
});
