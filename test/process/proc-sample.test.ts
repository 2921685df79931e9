// src/system/proc-sample.ts against /proc read here: a worker-like process (node, its own
// group) and a group of several processes, as `npm start` or a gunicorn arbiter makes.
import { spawn, type ChildProcess } from 'node:child_process';
import { sampleGroups, TICKS_PER_SECOND } from '../../src/system/proc-sample';
import { readProcStat } from '../../src/system/proc-stat';
import { groupMembers as members, PAGE_SIZE as PAGE, sleep, statmRss, waitFor } from '../helpers/proc';

describe('sampleGroups', () => {
  const started: ChildProcess[] = [];
  afterEach(async () => {
    for (const p of started.splice(0)) {
      const gone = p.exitCode === null && p.signalCode === null ? new Promise((r) => p.once('exit', r)) : undefined;
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
      await gone;
    }
  });

  /** `argv` as the leader of a group of its own (as baton starts a worker). */
  function group(argv: string[]): number {
    const p = spawn(argv[0], argv.slice(1), { detached: true, stdio: 'ignore' });
    started.push(p);
    return p.pid!;
  }

  test('a group of three: each process counted once, RSS as statm says, PSS present and smaller', async () => {
    const pgid = group(['sh', '-c', 'sleep 100 & sleep 100 & wait']);
    const pids = await waitFor('three members', () => members(pgid).length === 3 && members(pgid));
    const other = group(['sleep', '100']);
    const s = sampleGroups([pgid, other]);
    const g = s.get(pgid)!;
    expect(g).toEqual(expect.objectContaining({ pgid, processes: 3 }));
    expect(s.get(other)).toEqual(expect.objectContaining({ pgid: other, processes: 1 }));
    const statm = pids.reduce((n, p) => n + statmRss(p), 0);
    expect(Math.abs(g.rssBytes - statm)).toBeLessThanOrEqual(2 * PAGE);
    expect(g.pssBytes).not.toBeNull();
    // sh and two sleeps share their libraries' pages: the proportional share is less
    expect(g.pssBytes!).toBeGreaterThan(0);
    expect(g.pssBytes!).toBeLessThan(g.rssBytes);
    expect(g.cpuTicks).toBeGreaterThanOrEqual(0);
  });

  test('a busy node worker: RSS as statm says, CPU ticks rising as /proc/PID/stat counts them', async () => {
    const pid = group([process.execPath, '-e', 'for (;;);']);
    await waitFor('node to run', () => (readProcStat(pid)?.cpuTicks ?? 0) > 5);
    // node may still be growing (start-up, the JIT): the sample lies between a read before and one after
    const before = readProcStat(pid)!.cpuTicks;
    const rssBefore = statmRss(pid);
    const a = sampleGroups([pid]).get(pid)!;
    const rssAfter = statmRss(pid);
    const after = readProcStat(pid)!.cpuTicks;
    expect(a.processes).toBe(1);
    expect(a.cpuTicks).toBeGreaterThanOrEqual(before);
    expect(a.cpuTicks).toBeLessThanOrEqual(after);
    expect(a.rssBytes).toBeGreaterThanOrEqual(Math.min(rssBefore, rssAfter) - 2 * PAGE);
    expect(a.rssBytes).toBeLessThanOrEqual(Math.max(rssBefore, rssAfter) + 2 * PAGE);
    expect(a.pssBytes!).toBeGreaterThan(0);
    await sleep(300);
    const b = sampleGroups([pid]).get(pid)!;
    // a spinning process on a shared machine: well over a tick in 300 ms
    expect(b.cpuTicks - a.cpuTicks).toBeGreaterThan(TICKS_PER_SECOND / 100);
  });

  test('a group with no live member (gone, or its only process a zombie) is left out', async () => {
    // the leader exits and stays a zombie: node's child_process reaps it only on the next loop turn
    const pgid = group(['sh', '-c', 'exit 0']);
    await waitFor('the leader gone', () => {
      const st = readProcStat(pgid);
      return !st || st.state === 'Z';
    });
    expect(sampleGroups([pgid]).has(pgid)).toBe(false);
    expect(sampleGroups([]).size).toBe(0);
  });
});
