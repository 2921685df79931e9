import fs from 'node:fs';
import net from 'node:net';
import { flowing, startLoad } from '../helpers/load';
import { baton, batonAsync, childrenOf, cleanup, get, isAlive, nodeWorker, portOf, ready, startMaster, tmpdir, waitFor, workerPids, writeConfig, type Master } from '../helpers/proc';

describe('reload (HUP, baton reload)', () => {
  let m: Master | undefined;
  afterEach(() => cleanup(m));

  const config = (dir: string, workers: Record<string, unknown> = {}) =>
    writeConfig(dir, {
      name: 'reload',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: nodeWorker(), count: 2, readyTimeoutMs: 10000, stopTimeoutMs: 10000, ...workers },
    });

  test('three HUP reloads under keep-alive and fresh-connection load: 0 failed requests, old workers gone', async () => {
    const dir = tmpdir();
    m = startMaster(config(dir));
    const s0 = await ready(m);
    const port = portOf(s0);
    const load = startLoad(port, 4, 4);
    await flowing(load);
    const oldPids: number[] = [];
    const generationOf = new Map(workerPids(s0).map((p) => [p, 1]));
    let before = s0;
    for (let i = 1; i <= 3; i++) {
      oldPids.push(...workerPids(before));
      m.proc.kill('SIGHUP');
      await m.waitForOutput(new RegExp(`reload done: generation ${1 + i} serving`));
      await flowing(load);
      before = await m.status();
      expect(before.generation).toBe(1 + i);
      for (const g of before.generations) for (const w of g.workers) generationOf.set(w.pid, g.id);
    }
    const stats = await load.finish(100);
    console.log(`3 reloads under load: ${stats.ok} requests answered (keep-alive ${stats.keepalive.ok}, fresh ${stats.fresh.ok}), ${stats.failed} failed`);
    // every generation served: each of the four answered requests
    const served = new Set(Object.keys(stats.pids).map((p) => generationOf.get(Number(p))));
    expect([...served].sort()).toEqual([1, 2, 3, 4]);
    await waitFor('old workers to exit', () => oldPids.every((p) => !isAlive(p)), 20000);
    const s = await m.status();
    expect(s.generations.map((g) => g.id)).toEqual([4]);
    expect(s.generations[0].workers).toHaveLength(2);
  });

  test('baton reload waits for the new generation and reports it', async () => {
    const dir = tmpdir();
    const cfg = config(dir);
    m = startMaster(cfg);
    const s0 = await ready(m);
    const r = baton(['reload', '-c', cfg]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^reloaded: generation 2 serving/);
    // when `baton reload` returns, generation 2 serves and generation 1 is on its way out
    const s = await m.status();
    expect(s.generation).toBe(2);
    expect(s.generations.find((g) => g.id === 2)!.workers.every((w) => w.state === 'ready')).toBe(true);
    const body = JSON.parse((await get(portOf(s0))).body);
    expect(body.generation).toBe('2');
  });

  test('a broken config is refused with the key named; the old generation keeps serving', async () => {
    const dir = tmpdir();
    const cfg = config(dir);
    m = startMaster(cfg);
    const s0 = await ready(m);
    const port = portOf(s0);
    const good = fs.readFileSync(cfg, 'utf8');
    const broken = JSON.parse(good);
    broken.workers.count = 0;
    fs.writeFileSync(cfg, JSON.stringify(broken));
    const load = startLoad(port, 2, 2);
    await flowing(load);
    const r = baton(['reload', '-c', cfg]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/\/workers\/count: must be >= 1/);
    await flowing(load);
    await load.finish();
    const s = await m.status();
    expect(s.generation).toBe(1);
    expect(workerPids(s).sort()).toEqual(workerPids(s0).sort());
    expect(JSON.parse((await get(port)).body).generation).toBe('1');
    expect(m.output()).toMatch(/reload failed, generation 1 keeps serving: .*\/workers\/count: must be >= 1/);
  });

  test('a new generation that never sends READY=1 is refused and stopped; the old one keeps serving', async () => {
    const dir = tmpdir();
    const cfg = config(dir);
    m = startMaster(cfg);
    const s0 = await ready(m);
    const port = portOf(s0);
    const next = JSON.parse(fs.readFileSync(cfg, 'utf8'));
    next.workers.env = { WORKER_NEVER_READY: '1' };
    next.workers.readyTimeoutMs = 1500;
    next.workers.stopTimeoutMs = 3000;
    fs.writeFileSync(cfg, JSON.stringify(next));
    const load = startLoad(port, 2, 2);
    await flowing(load);
    const r = baton(['reload', '-c', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/worker \d \(pid \d+\) of generation 2 did not send READY=1 within 1500 ms/);
    await m.waitForOutput(/generation 2 has stopped/);
    await flowing(load);
    // the never-ready workers did serve some requests (they listened): none of them was lost
    await load.finish();
    const s = await m.status();
    expect(s.generation).toBe(1);
    expect(s.generations.map((g) => g.id)).toEqual([1]);
    expect(workerPids(s).sort()).toEqual(workerPids(s0).sort());
  });

  test('a reload applies a new log format and level', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'logs',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: nodeWorker() },
      log: { format: 'text' },
    });
    m = startMaster(cfg);
    await ready(m);
    const next = JSON.parse(fs.readFileSync(cfg, 'utf8'));
    next.log = { format: 'json', level: 'debug' };
    fs.writeFileSync(cfg, JSON.stringify(next));
    expect(baton(['reload', '-c', cfg]).code).toBe(0);
    m.proc.kill('SIGTTIN');
    // a debug line, as JSON: both took effect
    const line = await m.waitForOutput(/^\{.*"level":"debug".*worker 1 of generation 2 started.*\}$/m);
    expect(JSON.parse(line[0]).level).toBe('debug');
  });

  test('a second reload while one is under way is refused', async () => {
    const dir = tmpdir();
    const cfg = config(dir, { env: { WORKER_READY_DELAY_MS: '0' } });
    m = startMaster(cfg);
    await ready(m);
    const slow = JSON.parse(fs.readFileSync(cfg, 'utf8'));
    slow.workers.env = { WORKER_READY_DELAY_MS: '1500' };
    fs.writeFileSync(cfg, JSON.stringify(slow));
    m.proc.kill('SIGHUP');
    await m.waitForOutput(/SIGHUP: reloading/);
    const r = baton(['reload', '-c', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/reload refused: a reload is already under way/);
    m.proc.kill('SIGHUP');
    await m.waitForOutput(/SIGHUP: reload refused: a reload is already under way/);
    await m.waitForOutput(/reload done: generation 2 serving/);
    expect((await m.status()).generation).toBe(2);
  });

  // what a systemctl kill burst does to a worker caught between libuv's fork (every signal back
  // to its default) and the preloaded guard: here the worker kills itself with SIGUSR2 on its
  // first start (python can set SIG_DFL again), as many times as the marker files allow
  const killedByUsr2 = (dir: string, times: number): string[] => [
    'sh',
    '-c',
    `for i in $(seq ${times}); do [ -e "$0/usr2.$i" ] || { : > "$0/usr2.$i"; exec python3 -c 'import os, signal; signal.signal(signal.SIGUSR2, signal.SIG_DFL); os.kill(os.getpid(), signal.SIGUSR2)'; }; done; exec "$@"`,
    dir,
    ...nodeWorker(),
  ];

  test('a new worker killed by a master signal before it was ready is started again once; twice fails the reload', async () => {
    const dir = tmpdir();
    const cfg = config(dir);
    m = startMaster(cfg);
    await ready(m);
    const marks = fs.mkdtempSync(`${dir}/marks-`);
    const next = JSON.parse(fs.readFileSync(cfg, 'utf8'));
    next.workers.command = killedByUsr2(marks, 1);
    next.workers.count = 1;
    fs.writeFileSync(cfg, JSON.stringify(next));
    expect(baton(['reload', '-c', cfg]).code).toBe(0);
    await m.waitForOutput(/worker 0 \(pid \d+\) of generation 2 was killed by SIGUSR2 before it was ready, before it could ignore it .*: starting it again/);

    next.workers.command = killedByUsr2(fs.mkdtempSync(`${dir}/marks-`), 2);
    fs.writeFileSync(cfg, JSON.stringify(next));
    const r = baton(['reload', '-c', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/reload failed: worker 0 \(pid \d+\) of generation 3 was killed by SIGUSR2 before it was ready/);
    expect((await m.status()).generation).toBe(2);
  });

  test('reload.soakMs: a release that crashes on its first request after READY=1 is reverted under load; the old generation serves throughout', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'soak',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      reload: { soakMs: 4000 },
      workers: { command: nodeWorker(), count: 2, readyTimeoutMs: 10000, stopTimeoutMs: 10000, env: { WORKER_CRASH_GEN: '2' } },
    });
    m = startMaster(cfg);
    const s0 = await ready(m);
    const port = portOf(s0);
    const oldPids = workerPids(s0);
    const load = startLoad(port, 4, 4);
    let during;
    let r;
    try {
      await flowing(load);
      r = await batonAsync(['reload', '-c', cfg]);
    } finally {
      during = await load.stop();
    }
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 1, stderr: expect.stringMatching(/reload reverted: worker \d \(pid \d+\) of generation 2 exited with status 1, \d+ ms into the 4000 ms soak/) });
    // what failed is what a crashing worker held: at most one request per client in flight on it, two of them
    console.log(`soak revert under load: ${during.ok} answered, ${during.failed} failed (held by the crashing workers) ${JSON.stringify(during.errors)}`);
    expect(during.failed).toBeLessThanOrEqual(16);
    const s = await m.status();
    expect(s.generation).toBe(1);
    expect(workerPids(s)).toEqual(oldPids);
    expect(s.lastReload).toEqual(expect.objectContaining({ ok: false, reverted: true, generation: 2 }));
    expect(baton(['status', '-c', cfg]).stdout).toMatch(/last reload .*: reverted: worker \d \(pid \d+\) of generation 2 exited with status 1/);
    // and it goes on serving: nothing fails now
    const after = startLoad(port, 4, 4);
    try {
      // finish() wants 50 answers of each kind: both kinds, on a busy machine too
      await flowing(after, 300);
    } finally {
      await after.finish();
    }
    await waitFor('generation 2 to be gone', async () => (await m!.status()).generations.length === 1, 20000);
  });

  describe('rolling (reload.strategy "rolling")', () => {
    /** Workers alive under the master, sampled every 5 ms until stop(): the largest count seen. */
    function sampleWorkers(pid: number) {
      let max = 0;
      const t = setInterval(() => (max = Math.max(max, childrenOf(pid).length)), 5);
      return { stop: () => (clearInterval(t), max) };
    }
    const rolling = (dir: string, env: Record<string, string> = {}) =>
      writeConfig(dir, {
        name: 'roll',
        listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
        reload: { strategy: 'rolling', surge: 1 },
        workers: { command: nodeWorker(), count: 8, readyTimeoutMs: 10000, stopTimeoutMs: 10000, env },
      });

    /** A master of `cfg` under keep-alive and new-connection load through a `baton reload`: its answer, the most workers seen, the load's figures (0 failed, or finish() throws). */
    async function reloadUnderLoad(cfg: string) {
      m = startMaster(cfg);
      const s0 = await ready(m);
      const load = startLoad(portOf(s0), 4, 4);
      let r;
      let max = 0;
      let stats;
      try {
        await flowing(load);
        const sample = sampleWorkers(m.pid);
        try {
          r = await batonAsync(['reload', '-c', cfg]);
        } finally {
          max = sample.stop();
        }
        await flowing(load);
      } finally {
        stats = await load.finish(100);
      }
      return { s0, r, max, stats };
    }

    test('8 workers, surge 1, under keep-alive and new-connection load: never more than 9 workers (sampled), 0 failed requests, all 8 slots on generation 2', async () => {
      const { r, max, stats } = await reloadUnderLoad(rolling(tmpdir()));
      console.log(`rolling reload of 8 (surge 1) under load: ${stats.ok} answered, ${stats.failed} failed; at most ${max} workers seen`);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
      expect(max).toBeLessThanOrEqual(9);
      expect(max).toBeGreaterThanOrEqual(8);
      const s = await m!.status();
      expect(s.generation).toBe(2);
      expect(s.generations.find((g) => g.id === 2)!.workers.map((w) => w.slot)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    });

    test('a failure at slot 5 of 8: slots 1-4 (0-3) restored to generation 1, the reload fails with the reason, 0 failed requests', async () => {
      const { s0, r, max, stats } = await reloadUnderLoad(rolling(tmpdir(), { WORKER_FAIL_GEN: '2', WORKER_FAIL_SLOT: '4' }));
      console.log(`rolling reload failing at slot 5 of 8 under load: ${stats.ok} answered, ${stats.failed} failed; at most ${max} workers seen`);
      expect({ code: r.code, stderr: r.stderr }).toEqual({
        code: 1,
        stderr: expect.stringMatching(/reload reverted: worker 4 \(pid \d+\) of generation 2 exited with status 3.*; slot\(s\) 0, 1, 2, 3 restored to generation 1/),
      });
      expect(max).toBeLessThanOrEqual(9);
      const s = await m!.status();
      expect(s.generation).toBe(1);
      const g1 = s.generations.find((g) => g.id === 1)!;
      expect(g1.workers.map((w) => [w.slot, w.state])).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => [i, 'ready']));
      // slots 4-7 kept their workers; 0-3 have new ones of the old config
      const old = new Map(s0.generations[0].workers.map((w) => [w.slot, w.pid]));
      expect(g1.workers.map((w) => w.pid === old.get(w.slot))).toEqual([false, false, false, false, true, true, true, true]);
      await waitFor('generation 2 to be gone', async () => (await m!.status()).generations.length === 1, 20000);
    });
  });

  test('reload.maxDraining under long requests: a draining worker shows its open connections in status; one generation too many, the oldest is stopped now', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'drain-cap',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      reload: { maxDraining: 1 },
      workers: { command: nodeWorker(), count: 1, readyTimeoutMs: 10000, stopTimeoutMs: 60000 },
    });
    m = startMaster(cfg);
    const port = portOf(await ready(m));
    /** A request that takes a minute: it holds its worker's generation draining. */
    const longRequest = () => {
      const sock = net.connect(port, '127.0.0.1', () => sock.write('GET /?delay=60000 HTTP/1.1\r\nHost: x\r\n\r\n'));
      const done = { closed: false };
      sock.on('close', () => (done.closed = true));
      sock.on('error', () => undefined);
      return { sock, done };
    };
    const a = longRequest();
    try {
      await m.waitForOutput(/request in flight, answered in 60000 ms/);
      expect(baton(['reload', '-c', cfg]).code).toBe(0);
      const s1 = await m.status();
      const g1 = s1.generations.find((g) => g.id === 1)!;
      expect(g1.state).toBe('draining');
      await waitFor('the draining worker to say what it holds', async () =>
        ((await m!.status()).generations.find((g) => g.id === 1)?.workers[0].status ?? '') === 'stopping: 1 connection(s) open');
      expect(a.done.closed).toBe(false);
      // generation 2 takes the next long request; the next reload leaves two draining: one too many
      const b = longRequest();
      try {
        await waitFor('a request on generation 2', () => (m!.output().match(/request in flight, answered in 60000 ms/g) ?? []).length === 2);
        expect(baton(['reload', '-c', cfg]).code).toBe(0);
        await m.waitForOutput(/generation 1: more than reload\.maxDraining \(1\) generations are draining; its 1 worker\(s\) are stopped now \(SIGKILL\)/);
        await waitFor('the request held by generation 1 to be cut', () => a.done.closed);
        await waitFor('generation 1 to be gone', async () => !(await m!.status()).generations.some((g) => g.id === 1));
        const s = await m.status();
        expect(s.generations.map((g) => [g.id, g.state])).toEqual([
          [2, 'draining'],
          [3, 'serving'],
        ]);
        expect(b.done.closed).toBe(false);
      } finally {
        b.sock.destroy();
      }
    } finally {
      a.sock.destroy();
    }
  });
});

