// Issue 22, item 4: a rollback stops the successor's workers, and nothing else. The pids the
// successor reported are checked (start time, process group) before any signal, and those it
// said are gone are forgotten: a recycled pid, here another user's session leader planted at a
// dead worker's pid (ns_last_pid), is left alone.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { batonAsync, childrenOf, isAlive, rootOnly, startAtPid, tmpdir, waitFor } from '../helpers/proc';
import { startService, stopService, type Service } from '../helpers/service';

rootOnly('a rollback signals only what is still the successor’s', () => {
  let svc: Service | undefined;
  const planted: ChildProcess[] = [];
  afterEach(async () => {
    for (const p of planted.splice(0)) {
      try {
        process.kill(-p.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await stopService(svc);
    svc = undefined;
  });

  /** A master (under a subreaper, as under systemd) whose successor, in manual mode, serves beside it; its workers crash once `crash` exists. */
  async function sideBySide() {
    const dir = tmpdir();
    const crash = path.join(dir, 'crash');
    svc = await startService(
      {
        name: 'pids',
        upgrade: { mode: 'manual' },
        workers: { command: ['/bin/sh', '-c', `[ -e ${crash} ] && exit 1; exec sleep 600`], ready: 'spawn', count: 1, stopTimeoutMs: 2000 },
      },
      { dir },
    );
    const old = svc.master();
    const r = await batonAsync(['upgrade', '-c', svc.cfg]);
    // a failure here was seen once (Node 18, three shards): say why
    expect({ code: r.code, stderr: r.code === 0 ? '' : `${r.stderr}\n${svc.m.output()}` }).toEqual({ code: 0, stderr: '' });
    const succ = svc.master();
    expect(succ).not.toBe(old);
    const worker = await waitFor("the successor's worker", () => childrenOf(succ)[0]);
    return { old, succ, worker, crash, runDir: svc.runDir };
  }

  /** SIGKILLs the successor; resolves once the predecessor has rolled back and cleared up after it (stopped its workers, removed its files). */
  async function killSuccessor(succ: number): Promise<void> {
    process.kill(succ, 'SIGKILL');
    await svc!.m.waitForOutput(new RegExp(`removed what the successor \\(pid ${succ}\\) left behind`));
  }

  test('a crash-looping worker: its dead pids, one now another user’s session leader, are not signalled', async () => {
    const s = await sideBySide();
    fs.writeFileSync(s.crash, '');
    process.kill(s.worker, 'SIGKILL');
    const dead = await waitFor('four crashes of the successor’s worker', () => {
      const pids = [...svc!.m.output().matchAll(/worker 0 \(pid (\d+)\) of generation 2 exited with status 1; restarting/g)].map((x) => Number(x[1]));
      return pids.length >= 4 && pids;
    });
    const stranger = await startAtPid(dead[1], ['sleep', '600']);
    planted.push(stranger);
    await killSuccessor(s.succ);
    expect(isAlive(stranger.pid!)).toBe(true);
    expect(svc!.m.output()).toMatch(/the successor \(pid \d+\) exited before the upgrade was finished: rolled back/);
  });

  test('a worker whose death the successor never reported (both killed): its pid, now another user’s session leader, is not signalled', async () => {
    const s = await sideBySide();
    // the predecessor reads the successor's end only once its pid is someone else's
    process.kill(s.old, 'SIGSTOP');
    process.kill(s.succ, 'SIGSTOP'); // cannot report its worker's death
    process.kill(s.worker, 'SIGKILL');
    process.kill(s.succ, 'SIGKILL');
    await waitFor('the worker reaped (by the subreaper)', () => !fs.existsSync(`/proc/${s.worker}`));
    const stranger = await startAtPid(s.worker, ['sleep', '600']);
    planted.push(stranger);
    process.kill(s.old, 'SIGCONT');
    await svc!.m.waitForOutput(new RegExp(`removed what the successor \\(pid ${s.succ}\\) left behind`));
    expect(isAlive(stranger.pid!)).toBe(true);
  });
});
