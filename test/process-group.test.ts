// The process-group module on real process groups: zombies do not count, and stopGroup (a
// dead successor's workers) ends with SIGKILL and then waits no longer than it must.
import { spawn, type ChildProcess } from 'node:child_process';
import { isAlive } from '../src/system/process';
import { readProcStat } from '../src/system/proc-stat';
import { groupMembers, stopGroup } from '../src/system/process-group';
import { waitFor } from './helpers/proc';

// Starts a process group (a leader and a second member that ignores SIGTERM) and never reaps
// the leader: once dead it stays a zombie, as under an init that does not reap. Prints the
// group's id.
const HOLDER = `
import os, signal, time
leader = os.fork()
if leader == 0:
    os.setpgid(0, 0)
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.execvp('sleep', ['sleep', '600'])
    os.execvp('sleep', ['sleep', '600'])
print(leader, flush=True)
time.sleep(600)
`;

describe('process groups', () => {
  let holder: ChildProcess | undefined;
  let pgid = 0;
  afterEach(async () => {
    try {
      if (pgid) process.kill(-pgid, 'SIGKILL');
    } catch {
      /* gone */
    }
    if (holder && holder.exitCode === null && holder.signalCode === null) {
      const gone = new Promise((r) => holder!.once('exit', r));
      holder.kill('SIGKILL');
      await gone;
    }
    holder = undefined;
    pgid = 0;
  });

  async function group(): Promise<number[]> {
    holder = spawn('python3', ['-c', HOLDER], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    holder.stdout!.on('data', (d) => (out += d));
    pgid = await waitFor('the group id', () => (/^\d+\n/.test(out) ? Number(out) : undefined));
    return waitFor('two members', () => {
      const m = groupMembers(pgid);
      return m.length === 2 && m;
    });
  }

  test('a group whose processes are all zombies is empty, and stopGroup does not wait out its grace for it', async () => {
    const members = await group();
    expect(members).toContain(pgid);
    process.kill(-pgid, 'SIGKILL');
    await waitFor('the leader to be a zombie', () => readProcStat(pgid)?.state === 'Z');
    // kill(-pgid, 0) still succeeds: the zombie is in the group
    expect(() => process.kill(-pgid, 0)).not.toThrow();
    await waitFor('an empty group', () => groupMembers(pgid).length === 0);
    // a grace longer than the test's own timeout: it must not be waited out
    expect(await stopGroup(pgid, 'SIGTERM', 10 * 60 * 1000)).toEqual([]);
  });

  test('stopGroup: the stop signal, then SIGKILL for what ignores it; resolves with nothing left', async () => {
    const members = await group();
    const stubborn = members.find((p) => p !== pgid)!;
    expect(await stopGroup(pgid, 'SIGTERM', 500)).toEqual([]);
    expect(isAlive(stubborn)).toBe(false);
    expect(groupMembers(pgid)).toEqual([]);
  });
});
