import fs from 'node:fs';
import path from 'node:path';
import { flowing, startLoad } from '../helpers/load';
import { FIXTURES, cleanup, get, isAlive, nodeWorker, portOf, ready, sleep, startMaster, tmpdir, waitFor, workerPids, writeConfig, type Master } from '../helpers/proc';

describe('workers', () => {
  let m: Master | undefined;
  afterEach(() => cleanup(m));

  test('a Python worker gets exactly what systemd socket activation gives, plus BATON_*', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'py',
      listeners: [
        { name: 'http', tcp: '127.0.0.1:0' },
        { name: 'admin', unix: 'admin.sock' },
      ],
      workers: { command: ['python3', path.join(FIXTURES, 'py-worker.py')], count: 2 },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    const seen = new Map<string, Record<string, unknown>>();
    await waitFor('both workers to answer', async () => {
      const r = JSON.parse((await get(portOf(s))).body);
      seen.set(r.BATON_WORKER_ID, r);
      return seen.size === 2;
    });
    for (const [slot, r] of seen) {
      const w = s.generations[0].workers.find((x) => String(x.slot) === slot)!;
      expect(r.pid).toBe(w.pid);
      expect(r.LISTEN_PID).toBe(String(w.pid));
      expect(r.LISTEN_FDS).toBe('2');
      expect(r.LISTEN_FDNAMES).toBe('http:admin');
      expect(r.BATON_GENERATION).toBe('1');
      expect(r.NOTIFY_SOCKET).toMatch(/^@baton\/py\/\d+\/[0-9a-f]{32}$/);
      expect(r.ignored).toEqual({ SIGUSR2: true, SIGHUP: true, SIGWINCH: true });
      expect(r.sockets).toEqual([`('127.0.0.1', ${portOf(s)})`, path.join(dir, 'admin.sock')]);
      expect(r.accepting).toEqual([true, true]);
    }
    expect([...seen.keys()].sort()).toEqual(['0', '1']);
  });

  test('USR2, HUP and WINCH sent to every process (as systemctl kill does) leave the workers alone', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'sigs',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: nodeWorker(), count: 2 },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    for (const sig of ['SIGUSR2', 'SIGHUP', 'SIGWINCH'] as const) for (const pid of workerPids(s)) process.kill(pid, sig);
    await sleep(300);
    for (const pid of workerPids(s)) expect(isAlive(pid)).toBe(true);
    expect((await get(portOf(s))).status).toBe(200);
  });

  /** A plain Node app (no baton/worker, no process.on) run by `node`, after the master's signals as systemctl kill sends them. */
  async function plainNodeAfterSignals(node: string, name: string, dir: string): Promise<void> {
    const app = path.join(dir, 'plain.js');
    // what Node does with the master's signals is the guard's doing
    fs.writeFileSync(app, "require('node:http').createServer((q, r) => r.end(JSON.stringify({ preload: process.env.LD_PRELOAD }))).listen({ fd: 3 });\n");
    const cfg = writeConfig(dir, {
      name,
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: [node, app], count: 2, ready: 'spawn' },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    const port = portOf(s);
    await waitFor('the plain workers answering', async () => (await get(port).catch(() => undefined))?.status === 200);
    // to each process and to each worker's process group (systemctl kill signals every process)
    for (const sig of ['SIGUSR2', 'SIGHUP', 'SIGWINCH'] as const) {
      for (const pid of workerPids(s)) {
        process.kill(pid, sig);
        process.kill(-pid, sig);
      }
    }
    await sleep(300);
    for (const pid of workerPids(s)) expect(isAlive(pid)).toBe(true);
    const r = await get(port);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).preload).toMatch(/baton_signal_guard\.node$/);
  }

  test('a Node worker that handles no signal survives them too: the signal guard, preloaded, outlives Node resetting SIG_IGN', async () => {
    await plainNodeAfterSignals('node', 'plainsigs', tmpdir());
  });

  test('a Node binary named otherwise (a renamed copy, as single-executable apps and pkg are) survives them too: the guard knows Node by its symbols', async () => {
    const dir = tmpdir();
    const node = path.join(dir, 'mynode');
    fs.copyFileSync(process.execPath, node);
    fs.chmodSync(node, 0o755);
    await plainNodeAfterSignals(node, 'renamedsigs', dir);
  });

  test('a SIGKILLed worker is replaced in its slot; the other keeps serving', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'crash',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: nodeWorker(), count: 2 },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    const load = startLoad(portOf(s), 0, 4);
    await flowing(load);
    const [victim, other] = s.generations[0].workers;
    process.kill(victim.pid, 'SIGKILL');
    await m.waitForOutput(new RegExp(`worker ${victim.slot} \\(pid ${victim.pid}\\) of generation 1 was killed by SIGKILL; restarting slot ${victim.slot} in 0 ms`));
    const after = await waitFor('replacement ready', async () => {
      const st = await m!.status();
      const w = st.generations[0].workers.find((x) => x.slot === victim.slot);
      return w && w.pid !== victim.pid && w.state === 'ready' ? st : undefined;
    });
    await flowing(load);
    const stats = await load.stop();
    // Only what the killed worker held in flight can fail (at most one request per client);
    // no connection was refused: the socket stayed open in the master and the other worker.
    expect(stats.failed).toBeLessThanOrEqual(4);
    expect(stats.errors.ECONNREFUSED).toBeUndefined();
    const ws = after.generations[0].workers;
    expect(ws.find((w) => w.slot === other.slot)!.pid).toBe(other.pid);
    expect(ws.find((w) => w.slot === victim.slot)!.restarts).toBe(1);
    expect(Object.keys(stats.pids).map(Number)).toContain(other.pid);
  });

  test('a crash loop backs off: restarts slow down instead of spinning', async () => {
    const dir = tmpdir();
    const marks = path.join(dir, 'starts');
    fs.mkdirSync(marks);
    // serves as generation 1; every later start of the slot exits at once
    const script = `echo x >> ${marks}/n; if [ "$(wc -l < ${marks}/n)" -gt 1 ]; then exit 3; fi; exec sleep 600`;
    const cfg = writeConfig(dir, {
      name: 'loop',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: ['sh', '-c', script], ready: 'spawn' },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    process.kill(workerPids(s)[0], 'SIGKILL');
    await m.waitForOutput(/crash 5 in a row/, 10000);
    const delays = [...m.output().matchAll(/restarting slot 0 in (\d+) ms, crash (\d+) in a row/g)].map((x) => Number(x[1]));
    expect(delays.slice(0, 5)).toEqual([0, 100, 200, 400, 800]);
    expect(m.output()).toMatch(/exited with status 3; restarting/);
    // the master itself is fine and answers
    expect((await m.status()).phase).toBe('running');
  });

  test('TTIN adds a worker, TTOU removes the newest; WINCH stops all and HUP brings them back', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'resize',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: nodeWorker(), count: 2 },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    m.proc.kill('SIGTTIN');
    await waitFor('3 ready workers', async () => (await m!.status()).generations[0].workers.filter((w) => w.state === 'ready').length === 3);
    const three = await m.status();
    expect(three.generations[0].workers.map((w) => w.slot)).toEqual([0, 1, 2]);
    const newest = three.generations[0].workers[2].pid;
    m.proc.kill('SIGTTOU');
    await waitFor('newest worker gone', () => !isAlive(newest));
    expect((await m.status()).generations[0].workers.map((w) => w.slot)).toEqual([0, 1]);

    m.proc.kill('SIGWINCH');
    await m.waitForOutput(/generation 1 has stopped/);
    for (const pid of workerPids(s)) expect(isAlive(pid)).toBe(false);
    const idle = await m.status();
    expect(idle.generation).toBeNull();
    // the socket is still held: a connection is queued, not refused, and HUP starts workers to answer it
    const pending = get(portOf(s));
    await sleep(200);
    m.proc.kill('SIGHUP');
    expect((await pending).status).toBe(200);
    await m.waitForOutput(/reload done: generation 2 serving/);
    expect((await m.status()).generation).toBe(2);
  });

  test('a worker that exits before the first generation is ready fails the start with the reason, no loop', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'early',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: nodeWorker(), count: 2, env: { WORKER_EXIT: '7' } },
    });
    m = startMaster(cfg);
    const e = await m.exited;
    expect(e.code).toBe(1);
    expect(m.output()).toMatch(/cannot start: worker \d \(pid \d+\) of generation 1 exited with status 7 before it was ready/);
    expect(m.output()).not.toMatch(/restarting/);
    expect(fs.readdirSync(path.join(dir, 'run'))).toEqual([]);
  });

  test('a first generation that never sends READY=1 fails the start after readyTimeoutMs', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'silent',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: ['sleep', '600'], readyTimeoutMs: 800, stopTimeoutMs: 1000 },
    });
    m = startMaster(cfg);
    const e = await m.exited;
    expect(e.code).toBe(1);
    expect(m.output()).toMatch(/cannot start: worker 0 \(pid (\d+)\) of generation 1 did not send READY=1 within 800 ms \(a program that does not speak sd_notify needs "ready": "spawn"\)/);
    const pid = Number(/worker 0 \(pid (\d+)\)/.exec(m.output())![1]);
    expect(isAlive(pid)).toBe(false);
  });

  test('the master never accepts: with workers that do not accept, connections wait in the kernel queue', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'noaccept',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: ['sleep', '600'], ready: 'spawn' },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    const port = portOf(s);
    const net = await import('node:net');
    const socks = await Promise.all(
      [1, 2, 3].map(() => new Promise<import('node:net').Socket>((r) => { const c = net.connect(port, '127.0.0.1', () => r(c)); })),
    );
    // a LISTEN socket's rx_queue in /proc/net/tcp is its accept queue: all 3 still there
    const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
    const line = fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').find((l) => new RegExp(`^\\s*\\d+: 0100007F:${hexPort} 00000000:0000 0A `).test(l));
    expect(line).toBeDefined();
    const rxQueue = parseInt(line!.trim().split(/\s+/)[4].split(':')[1], 16);
    expect(rxQueue).toBe(3);
    socks.forEach((c) => c.destroy());
  });
});
