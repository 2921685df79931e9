import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { readPidfile } from '../../src/system/pidfile';
import { FakeSystemd } from '../helpers/fake-systemd';
import { flowing, startLoad, type Load } from '../helpers/load';
import {
  batonAsync,
  childrenOf,
  fdCount,
  get,
  getUnix,
  isAlive,
  nodeWorker,
  portOf,
  sleep,
  startMaster,
  tmpdir,
  waitFor,
  workerPids,
  writeConfig,
} from '../helpers/proc';
import { startService, stopService, type Service as BaseService } from '../helpers/service';

/** A master under a subreaper (standing in for systemd as PID 1) with a fake NOTIFY_SOCKET. */
interface Service extends BaseService {
  sd: FakeSystemd;
}

async function service(workers: Record<string, unknown> = {}, extra: Record<string, unknown> = {}, env: Record<string, string> = {}): Promise<Service> {
  const dir = tmpdir();
  const sd = new FakeSystemd(dir);
  const config = {
    name: 'up',
    listeners: [
      { name: 'http', tcp: '127.0.0.1:0' },
      { name: 'local', unix: 'sock/api.sock' },
    ],
    workers: { command: nodeWorker(), count: 2, readyTimeoutMs: 10000, stopTimeoutMs: 10000, ...workers },
    ...extra,
  };
  try {
    return Object.assign(await startService(config, { dir, env: { ...env, NOTIFY_SOCKET: sd.socket } }), { sd });
  } catch (e) {
    sd.close();
    throw e;
  }
}

async function stopUpgradeService(svc: Service | undefined): Promise<void> {
  svc?.sd.close();
  await stopService(svc);
}

const upgrade = (svc: Service) => batonAsync(['upgrade', '-c', svc.cfg]);

/** The successor's pid once it runs `workers` workers (they are slow to get ready: it is still upgrading). */
const successorWith = (svc: Service, workers: number) =>
  waitFor('the successor and its workers to start', async () => {
    const pid = (await svc.status()).upgrade.successorPid;
    return pid && childrenOf(pid).length === workers ? pid : undefined;
  });

describe('binary upgrade (USR2)', () => {
  let svc: Service | undefined;
  let load: Load | undefined;
  afterEach(async () => {
    await load?.stop();
    load = undefined;
    await stopUpgradeService(svc);
    svc = undefined;
  });

  test('20 upgrades in a row under load: 0 failed requests, MAINPID handed over each time, nothing left behind', async () => {
    svc = await service();
    const subreaper = svc.m.pid;
    load = startLoad(svc.port, 4, 4);
    await flowing(load);
    let fds: number | undefined;
    for (let i = 1; i <= 20; i++) {
      const old = svc.master();
      const r = await upgrade(svc);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const next = Number(new RegExp(`^upgraded: master pid ${old} -> (\\d+) in \\d+ ms`).exec(r.stdout)![1]);
      expect(svc.master()).toBe(next);
      // systemd heard of the new main pid while it was already the subreaper's child
      const handoff = (await svc.sd.waitFor('MAINPID', String(next)))[0];
      expect(handoff.pid).toBe(old);
      expect(handoff.mainPidParent).toBe(subreaper);
      await waitFor(`old master ${old} to exit`, () => !isAlive(old));
      expect(fs.existsSync(`${svc.pidfile}.oldbin`)).toBe(false);
      const s = await svc.status();
      expect(s.pid).toBe(next);
      expect(s.generation).toBe(1 + i);
      await waitFor('only the new generation', async () => (await svc!.status()).generations.length === 1);
      expect((await svc.status()).generations[0].workers.filter((w) => w.state === 'ready')).toHaveLength(2);
      // nothing orphaned: under the subreaper there is the master alone, under it its 2 workers
      await waitFor('no process but the new master under the subreaper', () => childrenOf(subreaper).join() === String(next));
      expect(childrenOf(next).sort()).toEqual(workerPids(await svc.status()).sort());
      // every master has the same open files: nothing accumulates from one to the next
      // (a control connection just answered may still be closing: allow it a moment)
      if (fds === undefined) {
        fds = fdCount(next);
        for (let k = 0; k < 10; k++, await sleep(50)) fds = Math.min(fds, fdCount(next));
      }
      const want = fds;
      await waitFor(`master ${next} to have ${want} open fds like the first (has ${fdCount(next)})`, () => fdCount(next) === want, 3000);
      await flowing(load, 20);
    }
    const stats = await load.finish(500);
    load = undefined;
    console.log(`20 upgrades under load: ${stats.ok} requests answered (keep-alive ${stats.keepalive.ok}, fresh ${stats.fresh.ok}), ${stats.failed} failed`);
    expect(svc.sd.with('MAINPID')).toHaveLength(20);
    // the last master stops cleanly; the subreaper exits once nothing is left under it
    process.kill(svc.master(), 'SIGTERM');
    expect((await svc.m.exited).code).toBe(0);
    expect(fs.readdirSync(path.join(svc.dir, 'run'))).toEqual([]);
    expect(fs.existsSync(path.join(svc.dir, 'sock', 'api.sock'))).toBe(false);
  });

  const rollbacks: Array<[string, (svc: Service) => void, RegExp]> = [
    ['the config broken on disk', (s) => s.rewrite((c) => (c.workers.count = 0)), /the code on disk refuses the config: .*\/workers\/count: must be >= 1/],
    ['the worker command missing', (s) => s.rewrite((c) => (c.workers.command = ['/nonexistent/worker'])), /\/workers\/command\/0: '\/nonexistent\/worker' does not exist/],
    ['the successor\'s workers crashing', (s) => s.rewrite((c) => (c.workers.env = { WORKER_FAIL_GEN: '2' })), /the successor \(pid \d+\) failed: worker \d \(pid \d+\) of generation 2 exited with status 3 before it was ready/],
    ['the successor\'s workers never ready', (s) => s.rewrite((c) => Object.assign(c.workers, { env: { WORKER_NEVER_READY: '1' }, readyTimeoutMs: 1000 })), /did not send READY=1 within 1000 ms/],
    ['the upgrade timing out', (s) => s.rewrite((c) => (c.workers.env = { WORKER_READY_DELAY_MS: '6000' })), /the successor was not ready within 3000 ms/],
  ];

  test.each(rollbacks)('rollback on %s: 0 failed requests, the old master keeps its pidfile and serves', async (_what, breakIt, reason) => {
    // the predecessor's own config sets the deadline (what is on disk is the successor's)
    svc = await service({}, { upgrade: { timeoutMs: 3000 } });
    const old = svc.master();
    const before = await svc.status();
    load = startLoad(svc.port, 2, 2);
    await flowing(load);
    breakIt(svc);
    const r = await upgrade(svc);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^baton: upgrade failed: /);
    expect(r.stderr).toMatch(reason);
    expect(svc.master()).toBe(old);
    expect(fs.existsSync(`${svc.pidfile}.oldbin`)).toBe(false);
    await flowing(load);
    const l = load;
    load = undefined;
    // a failure here is rare: say what failed and what both masters logged
    await l.finish().catch((e: Error) => {
      throw new Error(`${e.message}; the masters' log:\n${svc!.m.output()}`);
    });
    const s = await svc.status();
    expect(s.pid).toBe(old);
    expect(s.generation).toBe(before.generation);
    expect(workerPids(s).sort()).toEqual(workerPids(before).sort());
    expect(s.upgrade.state).toBe('none');
    // whatever the successor started is gone: under the subreaper only the old master is left
    await waitFor('successor and its workers gone', () => childrenOf(svc!.m.pid).join() === String(old), 30000);
    expect(childrenOf(old).sort()).toEqual(workerPids(s).sort());
    expect(svc.sd.with('MAINPID')).toHaveLength(0);
    expect(svc.sd.messages.at(-1)!.fields.get('STATUS')).toMatch(/^upgrade failed: /);
    expect(svc.m.output()).toMatch(/upgrade failed and rolled back, generation 1 keeps serving/);
  });

  test('reload.soakMs: a successor whose workers crash on their first request after READY=1 is rolled back under load; the old master serves throughout; then a sound one soaks and takes over', async () => {
    svc = await service({}, { reload: { soakMs: 4000 } });
    const old = svc.master();
    const before = await svc.status();
    load = startLoad(svc.port, 4, 4);
    await flowing(load);
    // the release on disk breaks on first use: the successor's generation 2
    svc.rewrite((c) => (c.workers.env = { WORKER_CRASH_GEN: '2' }));
    const r = await upgrade(svc);
    expect({ code: r.code, stderr: r.stderr }).toEqual({
      code: 1,
      stderr: expect.stringMatching(/^baton: upgrade rolled back: the successor \(pid \d+\) in its soak: its worker failed: worker \d \(pid \d+\) of generation 2 exited with status 1, \d+ ms into the 4000 ms soak/),
    });
    const l = load;
    load = undefined;
    const during = await l.stop();
    // what failed is what a crashing worker held: at most one request per client in flight on it, two of them
    console.log(`upgrade soak rollback under load: ${during.ok} answered, ${during.failed} failed (held by the crashing workers) ${JSON.stringify(during.errors)}`);
    expect(during.failed).toBeLessThanOrEqual(16);
    expect(svc.master()).toBe(old);
    expect(fs.existsSync(`${svc.pidfile}.oldbin`)).toBe(false);
    const s = await svc.status();
    expect(s.pid).toBe(old);
    expect(workerPids(s).sort()).toEqual(workerPids(before).sort());
    expect(s.upgrade.last).toEqual(expect.objectContaining({ ok: false, reverted: true }));
    expect(svc.sd.with('MAINPID')).toHaveLength(0);
    expect(svc.m.output()).toMatch(/upgrade rolled back, generation 1 keeps serving \(it did throughout\)/);
    await waitFor('successor and its workers gone', () => childrenOf(svc!.m.pid).join() === String(old), 30000);
    // a sound release: both masters serve for the soak, then the hand-over
    svc.rewrite((c) => (c.workers.env = {}));
    load = startLoad(svc.port, 4, 4);
    await flowing(load);
    const t0 = Date.now();
    const ok = await upgrade(svc);
    expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: '' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(4000);
    const stats = await load.finish(100);
    load = undefined;
    console.log(`upgrade after a 4 s soak under load: ${stats.ok} answered, ${stats.failed} failed`);
    expect(svc.sd.with('MAINPID')).toHaveLength(1);
    expect(svc.master()).not.toBe(old);
  });

  test('rollback when the successor is SIGKILLed mid-upgrade; the next USR2 succeeds', async () => {
    svc = await service({ env: { WORKER_READY_DELAY_MS: '1500' } });
    const old = svc.master();
    load = startLoad(svc.port, 2, 2);
    await flowing(load);
    const pending = upgrade(svc);
    const succ = await successorWith(svc, 2);
    const orphans = childrenOf(succ);
    process.kill(succ, 'SIGKILL');
    const r = await pending;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`the successor \\(pid ${succ}\\) exited before it was ready`));
    expect(svc.master()).toBe(old);
    // the successor's workers, orphaned by the SIGKILL, are stopped by the predecessor
    await waitFor('orphaned workers gone', () => orphans.every((p) => !isAlive(p)), 20000);
    await flowing(load);
    expect((await load.stop()).failed).toBe(0);
    load = undefined;
    svc.rewrite(() => undefined);
    const again = await upgrade(svc);
    expect(again.code).toBe(0);
    expect(svc.master()).not.toBe(old);
  });

  test('rollback when the predecessor is stopped (SIGTERM) mid-upgrade: the successor and its workers stopped, the upgrade answered as failed; the master drains and exits 0, nothing left', async () => {
    svc = await service({ env: { WORKER_READY_DELAY_MS: '1500' } });
    const old = svc.master();
    const oldWorkers = childrenOf(old);
    const pending = upgrade(svc);
    const succ = await successorWith(svc, 2);
    const succWorkers = childrenOf(succ);
    process.kill(old, 'SIGTERM');
    const r = await pending;
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: 'baton: upgrade failed: the master is stopping\n' });
    // the subreaper exits once nothing of either master is left
    expect(await Promise.race([svc.m.exited, sleep(20000).then(() => 'something still runs')])).toEqual({ code: 0, signal: null });
    for (const pid of [succ, ...succWorkers, old, ...oldWorkers]) expect(isAlive(pid)).toBe(false);
    // the next line of this master's (the successor's, which shares the output, may come between)
    const own = svc.m.output().split('\n').filter((l) => l.includes(`[up ${old}]`));
    const at = own.findIndex((l) => l.includes('upgrade rolled back: the master is stopping'));
    expect(at).toBeGreaterThanOrEqual(0);
    expect(own[at + 1]).toMatch(/SIGTERM: graceful stop/);
    expect(svc.m.output()).toMatch(new RegExp(`\\[up ${succ}\\] the predecessor aborted the upgrade: the master is stopping`));
    expect(fs.readdirSync(path.join(svc.dir, 'run'))).toEqual([]);
    expect(fs.existsSync(path.join(svc.dir, 'sock', 'api.sock'))).toBe(false);
  });

  test('listeners added by the new config are bound, removed ones closed (file too) once the upgrade succeeded', async () => {
    svc = await service();
    const sockFile = path.join(svc.dir, 'sock', 'api.sock');
    svc.rewrite((c) => (c.listeners = [c.listeners[0], { name: 'extra', tcp: '127.0.0.1:0' }]));
    const old = svc.master();
    // the old master serves the unix socket until the upgrade is confirmed
    const r = await upgrade(svc);
    expect(r.code).toBe(0);
    await waitFor('old master gone', () => !isAlive(old));
    const s = await svc.status();
    expect(s.listeners.map((l) => [l.name, l.source])).toEqual([['http', 'predecessor'], ['extra', 'config']]);
    expect((await get(portOf(s, 'extra'))).status).toBe(200);
    expect((await get(svc.port)).status).toBe(200);
    expect(fs.existsSync(sockFile)).toBe(false);
  });

  test('a listener the new config drops stays with the predecessor when the upgrade rolls back', async () => {
    svc = await service({}, { upgrade: { timeoutMs: 3000 } });
    const sockFile = path.join(svc.dir, 'sock', 'api.sock');
    svc.rewrite((c) => {
      c.listeners = [c.listeners[0]];
      c.workers.env = { WORKER_FAIL_GEN: '2' };
    });
    const r = await upgrade(svc);
    expect(r.code).toBe(1);
    expect(fs.lstatSync(sockFile).isSocket()).toBe(true);
    expect((await getUnix(sockFile)).status).toBe(200);
  });

  test('a listener the new config keeps stays with the predecessor, file too, when the upgrade rolls back', async () => {
    svc = await service({}, { upgrade: { timeoutMs: 3000 } });
    const sockFile = path.join(svc.dir, 'sock', 'api.sock');
    svc.rewrite((c) => {
      c.workers.env = { WORKER_FAIL_GEN: '2' };
    });
    const r = await upgrade(svc);
    expect(r.code).toBe(1);
    // the successor held it too, but never owned the file: its failure must not take it away
    const successor = Number(/successor \(pid (\d+)\)/.exec(r.stderr)?.[1]);
    expect(successor).toBeGreaterThan(0);
    await waitFor('the successor gone', () => !isAlive(successor));
    expect(fs.lstatSync(sockFile).isSocket()).toBe(true);
    expect((await getUnix(sockFile)).status).toBe(200);
  });

  test('live options the new config changes are set on the kept socket only once the upgrade is confirmed', async () => {
    svc = await service({}, { upgrade: { timeoutMs: 3000 } });
    const noDelay = async () => (await svc!.status()).listeners.find((l) => l.name === 'http')!.options![0].noDelay;
    expect(await noDelay()).toBe(true);
    // rolled back: the predecessor's socket is as it was
    svc.rewrite((c) => {
      c.listeners[0].noDelay = false;
      c.workers.env = { WORKER_FAIL_GEN: '2' };
    });
    expect((await upgrade(svc)).code).toBe(1);
    expect(await noDelay()).toBe(true);
    // confirmed: set
    svc.rewrite((c) => (c.listeners[0].noDelay = false));
    expect((await upgrade(svc)).code).toBe(0);
    expect(await noDelay()).toBe(false);
  });

  test('USR2 to every process at once (systemctl kill): one clean upgrade; a second USR2 meanwhile is refused', async () => {
    svc = await service();
    const old = svc.master();
    // the new generation takes 1.5 s to get ready, so that the second USR2 below surely comes
    // while the upgrade is under way (the upgrade is otherwise done in a few hundred ms)
    svc.rewrite((c) => (c.workers.env = { WORKER_READY_DELAY_MS: '1500' }));
    // as systemd's cg_kill does: signal every process of the service, then again every
    // process that appeared meanwhile, until none is new (here: for 200 ms)
    const signalled = new Set<number>();
    const descendants = (pid: number): number[] => childrenOf(pid).flatMap((c) => [c, ...descendants(c)]);
    for (const until = Date.now() + 200; Date.now() < until; await sleep(2)) {
      for (const p of descendants(svc.m.pid)) {
        if (signalled.has(p)) continue;
        signalled.add(p);
        try {
          process.kill(p, 'SIGUSR2');
        } catch {
          /* gone */
        }
      }
    }
    await svc.m.waitForOutput(/SIGUSR2: binary upgrade/);
    process.kill(old, 'SIGUSR2');
    await svc.m.waitForOutput(/SIGUSR2: upgrade refused: (an upgrade is already under way|the master is upgrading)/);
    const [handoff] = await svc.sd.waitFor('MAINPID');
    const next = Number(handoff.fields.get('MAINPID'));
    await waitFor('old master gone', () => !isAlive(old));
    expect(svc.master()).toBe(next);
    expect(svc.m.output().match(/upgrade done: /g)).toHaveLength(1);
    expect(svc.m.output()).not.toMatch(/worker \d \(pid \d+\) of generation 1 (was killed|exited with status [^0])/);
    expect((await get(svc.port)).status).toBe(200);
  });

  test('the sh that starts the successor killed by USR2 before its trap (a late burst): started again, one clean upgrade', async () => {
    const shimDir = tmpdir();
    const shim = path.join(shimDir, 'usr2-sh-shim.so');
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', shim, path.join(__dirname, '..', 'fixtures', 'usr2-sh-shim.c')]);
    const once = path.join(shimDir, 'once');
    try {
      svc = await service({}, {}, { LD_PRELOAD: shim, SHIM_ONCE: once });
      const old = svc.master();
      process.kill(old, 'SIGUSR2');
      await svc.m.waitForOutput(/the sh that starts the successor was killed by SIGUSR2 before it could \(a late signal burst\): starting it again/);
      const [handoff] = await svc.sd.waitFor('MAINPID');
      await waitFor('old master gone', () => !isAlive(old));
      expect(fs.existsSync(once)).toBe(true);
      expect(svc.master()).toBe(Number(handoff.fields.get('MAINPID')));
      expect(svc.m.output().match(/upgrade done: /g)).toHaveLength(1);
      expect((await get(svc.port)).status).toBe(200);
    } finally {
      fs.rmSync(shimDir, { recursive: true, force: true });
    }
  });

  test('a successor that is not confirmed yet refuses USR2 and HUP', async () => {
    svc = await service({}, { upgrade: { mode: 'manual' } });
    const r = await upgrade(svc);
    expect(r.code).toBe(0);
    const next = svc.master();
    process.kill(next, 'SIGUSR2');
    process.kill(next, 'SIGHUP');
    await svc.m.waitForOutput(/SIGUSR2: upgrade refused: this master is a successor its predecessor has not confirmed yet/);
    await svc.m.waitForOutput(/SIGHUP: reload refused: this master is a successor its predecessor has not confirmed yet/);
  });

  test('manual mode, nginx\'s flow: USR2, WINCH, QUIT to finish; USR2, WINCH, HUP + QUIT to the new one to roll back', async () => {
    svc = await service({}, { upgrade: { mode: 'manual' } });
    const subreaper = svc.m.pid;
    load = startLoad(svc.port, 2, 2);
    await flowing(load);

    // roll back first
    const old = svc.master();
    const oldWorkers = workerPids(await svc.status());
    const r1 = await upgrade(svc);
    expect(r1.code).toBe(0);
    expect(r1.stdout).toMatch(/\(manual mode\)/);
    const next = svc.master();
    expect(next).not.toBe(old);
    expect(readPidfile(`${svc.pidfile}.oldbin`)).toBe(old);
    await flowing(load);
    process.kill(old, 'SIGWINCH');
    await waitFor('old workers gone', () => oldWorkers.every((p) => !isAlive(p)));
    await flowing(load); // the successor's workers carry the load alone
    process.kill(old, 'SIGHUP');
    await svc.m.waitForOutput(/reload done: generation \d+ serving/);
    process.kill(next, 'SIGQUIT');
    await waitFor('successor gone', () => !isAlive(next));
    await svc.m.waitForOutput(/the successor \(pid \d+\) exited before the upgrade was finished: rolled back/);
    // (no pidfile for a moment: the successor removed its own, the old master renames .oldbin back)
    await waitFor('pidfile back', () => readPidfile(svc!.pidfile) === old);
    expect(fs.existsSync(`${svc.pidfile}.oldbin`)).toBe(false);
    expect(svc.sd.with('MAINPID')).toHaveLength(0);
    await flowing(load);

    // then finish one
    const r2 = await upgrade(svc);
    expect(r2.code).toBe(0);
    const next2 = svc.master();
    process.kill(old, 'SIGWINCH');
    await svc.m.waitForOutput(/SIGWINCH: stopping all workers/);
    await flowing(load);
    process.kill(old, 'SIGQUIT');
    const [handoff] = await svc.sd.waitFor('MAINPID', String(next2));
    expect(handoff.pid).toBe(old);
    expect(handoff.mainPidParent).toBe(subreaper);
    await waitFor('old master gone', () => !isAlive(old));
    expect(fs.existsSync(`${svc.pidfile}.oldbin`)).toBe(false);
    // the successor is the master now: the control socket is its own
    await waitFor('control socket moved', async () => (await svc!.status().catch(() => null))?.pid === next2);
    await flowing(load);
    const l = load;
    load = undefined;
    await l.finish();
  });

  test('manual mode, side by side: the old master\'s workers WINCHed away, then the successor exits (QUIT): the old master rolls back and starts a generation by itself, serving again; nothing left', async () => {
    svc = await service({}, { upgrade: { mode: 'manual' } });
    const subreaper = svc.m.pid;
    const old = svc.master();
    const before = await svc.status();
    load = startLoad(svc.port, 2, 2);
    await flowing(load);
    expect((await upgrade(svc)).code).toBe(0);
    const next = svc.master();
    expect(readPidfile(`${svc.pidfile}.oldbin`)).toBe(old);
    process.kill(old, 'SIGWINCH');
    await waitFor('the old master\'s workers gone', () => workerPids(before).every((p) => !isAlive(p)));
    const nextWorkers = childrenOf(next);
    expect(nextWorkers).toHaveLength(2);
    await flowing(load); // the successor's workers carry the load alone
    expect((await svc.status()).generations).toEqual([]);

    process.kill(next, 'SIGQUIT');
    await svc.m.waitForOutput(new RegExp(`the successor \\(pid ${next}\\) exited before the upgrade was finished: rolled back`));
    // by itself: no HUP, nothing asked; a generation numbered past the successor's
    const s = await waitFor('a generation of the old master serving', async () => {
      const st = await svc!.status();
      return st.generations.length === 1 && st.generations[0].workers.filter((w) => w.state === 'ready').length === 2 && st;
    });
    expect(s.pid).toBe(old);
    expect(s.generation).toBe(3);
    expect(svc.master()).toBe(old);
    expect(fs.existsSync(`${svc.pidfile}.oldbin`)).toBe(false);
    // answered by that generation's workers
    const answers = await Promise.all(Array.from({ length: 10 }, () => get(svc!.port)));
    for (const a of answers) expect(workerPids(s)).toContain(JSON.parse(a.body).pid);
    await flowing(load);
    const stats = await load.stop();
    load = undefined;
    console.log(`side-by-side rollback: ${stats.ok} requests answered, ${stats.failed} failed ${JSON.stringify(stats.errors)}`);
    expect(stats.failed).toBe(0);
    expect(stats.ok).toBeGreaterThanOrEqual(150);
    // nothing left: the successor and its workers gone; under the subreaper the old master alone, under it its new workers
    for (const p of [next, ...nextWorkers]) expect(isAlive(p)).toBe(false);
    await waitFor('no process but the old master under the subreaper', () => childrenOf(subreaper).join() === String(old));
    expect(childrenOf(old).sort()).toEqual(workerPids(s).sort());
    expect(svc.sd.with('MAINPID')).toHaveLength(0);
    // and it stops cleanly: the subreaper exits once nothing is left under it
    process.kill(old, 'SIGTERM');
    expect((await svc.m.exited).code).toBe(0);
    expect(fs.readdirSync(svc.runDir)).toEqual([]);
  });

  test('manual mode: a HUP to the old master while both serve, the hand-over, a reload: no generation number is used twice', async () => {
    svc = await service({ count: 1 }, { upgrade: { mode: 'manual' } });
    const old = svc.master();
    expect((await upgrade(svc)).code).toBe(0);
    const next = svc.master();
    const used = [1];
    process.kill(old, 'SIGHUP');
    const [, hup] = await svc.m.waitForOutput(/reload done: generation (\d+) serving/);
    used.push(Number(hup));
    process.kill(old, 'SIGQUIT');
    await waitFor('control socket moved', async () => (await svc!.status().catch(() => null))?.pid === next);
    used.push((await svc.status()).generation!);
    const r = await batonAsync(['reload', '-c', svc.cfg]);
    expect(r.code).toBe(0);
    used.push(Number(/reloaded: generation (\d+) serving/.exec(r.stdout)![1]));
    // 1, the successor's 2, the old master's HUP 3, the successor's reload 4
    expect(used).toEqual([1, 3, 2, 4]);
  });

  test('upgrade to a different build: the successor runs the code now on disk', async () => {
    // an installed copy of baton whose files are swapped while it runs
    const root = path.resolve(__dirname, '..', '..');
    const inst = tmpdir('baton-install-');
    fs.cpSync(path.join(root, 'bin'), path.join(inst, 'bin'), { recursive: true });
    fs.cpSync(path.join(root, 'dist'), path.join(inst, 'dist'), { recursive: true });
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(inst, 'node_modules'));
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    fs.writeFileSync(path.join(inst, 'package.json'), JSON.stringify({ ...pkg, version: '1.0.0' }));
    const built = await startService(
      { name: 'build', listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: nodeWorker() } },
      { baton: path.join(inst, 'bin', 'baton') },
    );
    const { m, cfg } = built;
    try {
      expect(built.first.version).toBe('1.0.0');
      // node's flags (bin/baton's, the master's memory: bench section 9) are the successor's too
      const flags = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a.startsWith('--'));
      const firstFlags = flags(built.first.pid);
      expect(firstFlags).toEqual(expect.arrayContaining(['--lite-mode', '--expose-gc']));
      // the package manager replaces the files: a new version, and a changed module
      fs.writeFileSync(path.join(inst, 'package.json'), JSON.stringify({ ...pkg, version: '1.1.0' }));
      const masterJs = path.join(inst, 'dist', 'bundle', 'baton.js'); // what bin/baton runs
      fs.writeFileSync(masterJs, fs.readFileSync(masterJs, 'utf8').replace('master starting (pid', 'master (new build) starting (pid'));
      const r = await batonAsync(['upgrade', '-c', cfg]);
      expect(r.code).toBe(0);
      const after = await m.status();
      expect(after.version).toBe('1.1.0');
      expect(after.pid).not.toBe(built.first.pid);
      // (the first master may be gone by now: its flags were read before)
      expect(flags(after.pid)).toEqual(firstFlags);
      expect(m.output()).toMatch(/baton 1.1.0 master \(new build\) starting/);
      expect((await get(portOf(after))).status).toBe(200);
      process.kill(after.pid, 'SIGTERM');
      expect((await m.exited).code).toBe(0);
    } finally {
      await stopService(built);
    }
  });
});

describe('no code loaded after start-up', () => {
  test('reload (new log format), USR1, TTIN, TTOU, status and upgrade read no module from disk in a running master', async () => {
    const dir = tmpdir();
    const trace = path.join(dir, 'loads.txt');
    const svc = await startService(
      { name: 'lazy', listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: nodeWorker() } },
      { dir, env: { NODE_OPTIONS: `--require ${path.join(__dirname, '..', 'helpers', 'trace-loads.js')}`, TRACE_LOADS_FILE: trace } },
    );
    const { m, cfg } = svc;
    try {
      const master = svc.first.pid;
      const startedUp = Date.now();
      const c = JSON.parse(fs.readFileSync(cfg, 'utf8'));
      c.log = { format: 'json', level: 'debug' };
      fs.writeFileSync(cfg, JSON.stringify(c));
      expect((await batonAsync(['reload', '-c', cfg])).code).toBe(0);
      // each took effect: the log reopened, a worker more (ready), one less (gone)
      const workers = async () => {
        const st = await m.status();
        return st.generations.find((g) => g.id === st.generation)!.workers;
      };
      process.kill(master, 'SIGUSR1');
      await m.waitForOutput(/SIGUSR1: log file reopened/);
      process.kill(master, 'SIGTTIN');
      await m.waitForOutput(/SIGTTIN: generation 2 now has 2 worker\(s\)/);
      await waitFor('a second worker, ready', async () => (await workers()).filter((w) => w.state === 'ready').length === 2);
      process.kill(master, 'SIGTTOU');
      await m.waitForOutput(/SIGTTOU: generation 2 now has 1 worker\(s\)/);
      await waitFor('one worker again', async () => (await workers()).length === 1);
      const up = await batonAsync(['upgrade', '-c', cfg]);
      expect(up.code).toBe(0);
      await waitFor('old master gone', () => !isAlive(master));
      const lines = fs.readFileSync(trace, 'utf8').trim().split('\n').map((l) => l.split(' '));
      // the trace works: the master did load its code, before it was ready
      expect(lines.some(([pid, , file]) => Number(pid) === master && file.endsWith(path.join('dist', 'bundle', 'baton.js')))).toBe(true);
      const late = lines.filter(([pid, at]) => Number(pid) === master && Number(at) > startedUp);
      expect(late).toEqual([]);
      process.kill((await m.status()).pid, 'SIGTERM');
      expect((await m.exited).code).toBe(0);
    } finally {
      await stopService(svc);
    }
  });
});

describe('successor environment', () => {
  test('a malformed upgrade environment is refused with exit 78', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, { name: 'badup', workers: { command: nodeWorker() } });
    const m = startMaster(cfg, { env: { BATON_UPGRADE_FD: 'x', BATON_NEXT_GENERATION: '2' } });
    expect((await m.exited).code).toBe(78);
    expect(m.output()).toMatch(/bad upgrade environment: BATON_UPGRADE_FD=x/);
    await sleep(0);
  });

  test('a master without sockets hands over none: no LISTEN_PID alone, which the successor would refuse', async () => {
    const svc = await startService({ name: 'nosock', workers: { command: ['sleep', '600'], ready: 'spawn' } });
    const { m, cfg, first: before } = svc;
    try {
      expect(before.listeners).toEqual([]);
      const up = await batonAsync(['upgrade', '-c', cfg]);
      expect(up.stderr).toBe('');
      expect(up.code).toBe(0);
      const after = await m.status();
      expect(after.pid).not.toBe(before.pid);
      expect(after.generation).toBe(2);
      process.kill(after.pid, 'SIGTERM');
      expect((await m.exited).code).toBe(0);
    } finally {
      await stopService(svc);
    }
  });
});
