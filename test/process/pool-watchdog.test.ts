// Issue 11 part 3: the worker watchdog with a real master and real workers. A worker that stops
// pinging is signalled, killed and replaced; one whose serve() pings is left alone; a worker
// sees WATCHDOG_USEC and WATCHDOG_PID = its own pid. The pool's timing rules are in pool.test.ts.
import fs from 'node:fs';
import path from 'node:path';
import type { StatusReply } from '../../src/contract/control';
import { FIXTURES, baton, cleanupAll, get, isAlive, portOf, ready, sleep, startMaster, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

const WORKER = [process.execPath, path.join(FIXTURES, 'watchdog-worker.js')];

/** Slot 0's worker once it is ready and is not `oldPid`. */
async function replaced(m: Master, oldPid: number): Promise<{ st: StatusReply; pid: number }> {
  return waitFor(`a new ready worker in slot 0 (not pid ${oldPid})`, async () => {
    const st = await m.status();
    const w = st.generations[0]?.workers.find((x) => x.slot === 0);
    return w && w.pid !== oldPid && w.state === 'ready' ? { st, pid: w.pid } : undefined;
  });
}

describe('the worker watchdog', () => {
  let m: Master | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await cleanupAll(m, dir);
    m = dir = undefined;
  });

  test('a serve() worker whose event loop blocks is sent SIGABRT, replaced in its slot, and counted', async () => {
    dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'wd-hang',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      // it pings for 3 periods first, then blocks
      workers: { command: WORKER, watchdogMs: 500, stopTimeoutMs: 10000, env: { WORKER_HANG_ONCE: dir, HANG_AFTER_MS: '1500' } },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    const first = s.generations[0].workers[0];
    expect(first.watchdogMs).toBe(500);
    await m.waitForOutput(
      new RegExp(`worker 0 \\(pid ${first.pid}\\) of generation 1 sent no WATCHDOG=1 within 500 ms: hung; sending SIGABRT to its process group, SIGKILL in 10000 ms`),
    );
    // SIGABRT's default action ends a process whose loop is stuck (a handler could not run)
    await m.waitForOutput(new RegExp(`pid ${first.pid}\\) of generation 1 was killed by SIGABRT \\(watchdog\\); restarting slot 0 in 0 ms`));
    const { st, pid } = await replaced(m, first.pid);
    expect(fs.readFileSync(path.join(dir, 'hung'), 'utf8')).toBe(String(first.pid));
    expect(isAlive(first.pid)).toBe(false);
    expect(st.watchdogKills).toBe(1);
    expect(st.generations[0].watchdogKills).toBe(1);
    expect(st.generations[0].workers[0].restarts).toBe(1);
    // the replacement serves
    expect(JSON.parse((await get(portOf(st))).body).pid).toBe(pid);

    const text = baton(['status', '-c', cfg]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('watchdog   1 hung worker(s) killed since the master started');
    expect(text.stdout).toContain('generation 1 (serving, 1 wanted, 1 killed by the watchdog)');
    // then cpu, pss, rss, processes
    expect(text.stdout).toMatch(new RegExp(`\\n    0    ${pid} +ready +1 +\\S+ +500ms +\\S+% +\\S+ +\\S+ +1 +serving http\\n`));
    expect(text.stdout).toMatch(/\n {9}last exit: watchdog, SIGABRT, \d+s ago\n/);
  });

  test('a worker that never pings and ignores SIGABRT gets SIGKILL at stopTimeoutMs; it sees WATCHDOG_USEC and WATCHDOG_PID = its pid', async () => {
    dir = tmpdir();
    // sends READY=1, writes what it was given, sleeps; SIG_IGN for ABRT survives exec
    const py =
      'import os, socket, time\n' +
      'a = os.environ["NOTIFY_SOCKET"]; a = "\\0" + a[1:]\n' +
      `open(os.path.join(${JSON.stringify(dir)}, "env-%d" % os.getpid()), "w").write("%s %s" % (os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID")))\n` +
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b"READY=1", a)\n' +
      'time.sleep(3600)\n';
    const cfg = writeConfig(dir, {
      name: 'wd-deaf',
      listeners: [],
      workers: { command: ['/bin/sh', '-c', 'trap "" ABRT; exec python3 -c "$1"', 'sh', py], watchdogMs: 400, stopTimeoutMs: 700 },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    const first = s.generations[0].workers[0].pid;
    expect(fs.readFileSync(path.join(dir, `env-${first}`), 'utf8')).toBe(`400000 ${first}`);
    await m.waitForOutput(new RegExp(`worker 0 \\(pid ${first}\\) of generation 1 still running 700 ms after SIGABRT: SIGKILL`));
    await m.waitForOutput(new RegExp(`pid ${first}\\) of generation 1 was killed by SIGKILL \\(watchdog\\); restarting slot 0`));
    const { st, pid } = await replaced(m, first);
    expect(st.watchdogKills).toBeGreaterThanOrEqual(1);
    expect(fs.readFileSync(path.join(dir, `env-${pid}`), 'utf8')).toBe(`400000 ${pid}`);
  });

  test('a serve() worker left alone over several periods: it pings; WATCHDOG_PID is its pid (LISTEN_PID too)', async () => {
    dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'wd-fine',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: WORKER, count: 2, watchdogMs: 1000 },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    const pids = s.generations[0].workers.map((w) => w.pid);
    const seen = JSON.parse((await get(portOf(s))).body);
    expect(seen).toEqual({ pid: seen.pid, WATCHDOG_USEC: '1000000', WATCHDOG_PID: String(seen.pid), LISTEN_PID: String(seen.pid) });
    expect(pids).toContain(seen.pid);
    await sleep(4000);
    const after = await m.status();
    expect(after.watchdogKills).toBe(0);
    expect(after.generations[0].workers.map((w) => [w.pid, w.state, w.restarts, w.watchdogMs])).toEqual(pids.map((p) => [p, 'ready', 0, 1000]));
    expect(m.output()).not.toMatch(/hung/);
  }, 30000);
});

describe('baton check: workers.watchdogMs and workers.watchdogSignal', () => {
  let dir: string | undefined;
  afterEach(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  test.each([
    [{ watchdogSignal: 'SIGHUP' }, '/workers/watchdogSignal: must be one of SIGABRT, SIGQUIT, SIGTERM, SIGINT, SIGUSR1, SIGKILL (a signal that ends a hung process by default; workers ignore SIGHUP, SIGUSR2 and SIGWINCH)'],
    [{ watchdogSignal: 'SIGSTOP' }, '/workers/watchdogSignal: must be one of SIGABRT'],
    [{ watchdogMs: -1 }, '/workers/watchdogMs: must be >= 0'],
    [{ watchdogMs: 1.5 }, '/workers/watchdogMs: must be integer'],
    [{ watchdogMs: 86400001 }, '/workers/watchdogMs: must be <= 86400000'],
  ])('%j: exit 78 naming the key', (workers, problem) => {
    dir = tmpdir();
    const cfg = writeConfig(dir, { workers: { command: ['sh'], ...workers } });
    const r = baton(['check', '-c', cfg]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(problem);
  });

  test('a valid watchdog passes', () => {
    dir = tmpdir();
    const cfg = writeConfig(dir, { workers: { command: ['sh'], watchdogMs: 30000, watchdogSignal: 'SIGQUIT' } });
    expect(baton(['check', '-c', cfg]).code).toBe(0);
  });
});
