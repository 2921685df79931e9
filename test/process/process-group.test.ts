// The process-group module on real process groups: zombies do not count, stopGroup (a dead
// successor's workers) ends with SIGKILL and then waits no longer than it must, and a group
// whose id has been handed out again is a stranger's: never counted, never signalled.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { identify, isAlive } from '../../src/system/process';
import { readProcStat } from '../../src/system/proc-stat';
import { ProcessGroup, stopGroup } from '../../src/system/process-group';
import { rootOnly, startAtPid, waitFor } from '../helpers/proc';

// Starts a process group (a leader and a second member that ignores SIGTERM) and never reaps
// the leader: once dead it stays a zombie, as under an init that does not reap. Prints the
// group's id. REAPER: the same, but the leader is reaped once dead.
const HOLDER = `
import os, signal, sys, time
leader = os.fork()
if leader == 0:
    os.setpgid(0, 0)
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.execvp('sleep', ['sleep', '600'])
    os.execvp('sleep', ['sleep', '600'])
print(leader, flush=True)
if sys.argv[1] == 'reap':
    os.waitpid(leader, 0)
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

  /** The group, as baton would know it from its leader, and its members (learnt). */
  async function group(leader: 'keep' | 'reap' = 'keep'): Promise<{ g: ProcessGroup; members: number[] }> {
    holder = spawn('python3', ['-c', HOLDER, leader], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    holder.stdout!.on('data', (d) => (out += d));
    pgid = await waitFor('the group id', () => (/^\d+\n/.test(out) ? Number(out) : undefined));
    // the holder reaps its leader only once it is dead: its pid is still the leader's
    const g = new ProcessGroup(identify(pgid)!);
    const members = await waitFor('two members', () => {
      const m = g.members();
      return m.length === 2 && m;
    });
    return { g, members };
  }

  test('a group whose processes are all zombies is empty, and stopGroup does not wait out its grace for it', async () => {
    const { g, members } = await group();
    expect(members).toContain(pgid);
    process.kill(-pgid, 'SIGKILL');
    await waitFor('the leader to be a zombie', () => readProcStat(pgid)?.state === 'Z');
    // kill(-pgid, 0) still succeeds: the zombie is in the group
    expect(() => process.kill(-pgid, 0)).not.toThrow();
    await waitFor('an empty group', () => g.members().length === 0);
    // a grace longer than the test's own timeout: it must not be waited out
    expect(await stopGroup(g, 'SIGTERM', 10 * 60 * 1000)).toEqual([]);
  });

  test('stopGroup: the stop signal, then SIGKILL for what ignores it; resolves with nothing left', async () => {
    const { g, members } = await group();
    const stubborn = members.find((p) => p !== pgid)!;
    expect(await stopGroup(g, 'SIGTERM', 500)).toEqual([]);
    expect(isAlive(stubborn)).toBe(false);
    expect(g.members()).toEqual([]);
  });

  test('a member that outlives its reaped leader keeps the group known: stopGroup still stops it', async () => {
    const { g, members } = await group('reap');
    const child = members.find((p) => p !== pgid)!;
    process.kill(pgid, 'SIGKILL');
    await waitFor('the leader to be reaped', () => readProcStat(pgid) === undefined);
    expect(g.members()).toEqual([child]);
    expect(await stopGroup(g, 'SIGTERM', 500)).toEqual([]);
    expect(isAlive(child)).toBe(false);
  });
});

rootOnly('a group id handed out again (a recycled pid)', () => {
  const strangers: ChildProcess[] = [];
  afterEach(() => {
    for (const p of strangers.splice(0)) {
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  });

  /** A worker's group as baton knows it (a leader it started, identified before reaping it), once gone and reaped. */
  async function deadGroup(): Promise<ProcessGroup> {
    const leader = spawn('sleep', ['600'], { detached: true, stdio: 'ignore' });
    const g = new ProcessGroup(identify(leader.pid!)!);
    const exited = new Promise((r) => leader.once('exit', r));
    leader.kill('SIGKILL');
    await exited;
    return g;
  }

  test("is another user's session leader now: neither counted nor signalled, it lives", async () => {
    const g = await deadGroup();
    const stranger = await startAtPid(g.pgid, ['sleep', '600']);
    strangers.push(stranger);
    expect(readProcStat(g.pgid)!.pgid).toBe(g.pgid);
    expect(g.members()).toEqual([]);
    expect(await stopGroup(g, 'SIGTERM', 500)).toEqual([]);
    expect(g.signal('SIGKILL')).toBe(false);
    expect(isAlive(stranger.pid!)).toBe(true);
  });

  test("is another user's group whose leader has left (its child still in it): not signalled, the child lives", async () => {
    const g = await deadGroup();
    // the stranger leads a session of its own with that pid, starts a child in its group and exits
    const stranger = await startAtPid(g.pgid, ['sh', '-c', 'sleep 600 &']);
    strangers.push(stranger);
    await waitFor('the stranger leader to be gone', () => !isAlive(g.pgid));
    const child = await waitFor("the stranger's child", () => childInGroup(g.pgid));
    expect(g.members()).toEqual([]);
    expect(await stopGroup(g, 'SIGTERM', 500)).toEqual([]);
    expect(isAlive(child)).toBe(true);
  });
});

/** A live process in group `pgid` (not its leader). */
function childInGroup(pgid: number): number | undefined {
  for (const d of fs.readdirSync('/proc')) {
    const st = /^\d+$/.test(d) && Number(d) !== pgid ? readProcStat(Number(d)) : undefined;
    if (st && st.pgid === pgid && st.state !== 'Z') return Number(d);
  }
  return undefined;
}
