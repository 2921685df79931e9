import fs from 'node:fs';
import path from 'node:path';
import { baton, cleanup, get, getUnix, isAlive, nodeWorker, portOf, ready, startMaster, tmpdir, waitFor, workerPids, writeConfig, type Master } from '../helpers/proc';

describe('stop', () => {
  let m: Master | undefined;
  afterEach(() => cleanup(m));

  const start = async (extra: Record<string, unknown> = {}) => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'stop',
      pidfile: 'master.pid',
      listeners: [
        { name: 'http', tcp: '127.0.0.1:0' },
        { name: 'local', unix: 'sock/api.sock', mode: '0666' },
      ],
      workers: { command: nodeWorker(), count: 2, stopTimeoutMs: 20000, ...extra },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    return { dir, cfg, s, port: portOf(s) };
  };

  for (const sig of ['SIGQUIT', 'SIGTERM'] as const) {
    test(`${sig}: an in-flight slow request completes, exit 0, nothing left behind`, async () => {
      const { dir, s, port } = await start();
      const pidfile = path.join(dir, 'master.pid');
      const sockFile = path.join(dir, 'sock/api.sock');
      expect(fs.readFileSync(pidfile, 'utf8').trim()).toBe(String(m!.pid));
      expect(fs.statSync(sockFile).mode & 0o777).toBe(0o666);
      expect((await getUnix(sockFile)).status).toBe(200);
      const slow = get(port, '/?delay=1500');
      await m!.waitForOutput(/request in flight, answered in 1500 ms/);
      const t0 = Date.now();
      m!.proc.kill(sig);
      const res = await slow;
      expect(res.status).toBe(200);
      const exit = await m!.exited;
      expect(exit).toEqual({ code: 0, signal: null });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
      expect(m!.output()).toMatch(new RegExp(`${sig}: graceful stop`));
      for (const pid of workerPids(s)) expect(isAlive(pid)).toBe(false);
      expect(fs.existsSync(pidfile)).toBe(false);
      expect(fs.existsSync(sockFile)).toBe(false);
      expect(fs.readdirSync(path.join(dir, 'run'))).toEqual([]);
    });
  }

  test('SIGINT is a fast stop: workers killed at once, in-flight requests cut', async () => {
    const { s, port } = await start();
    const slow = get(port, '/?delay=5000').then(
      () => 'answered',
      () => 'cut',
    );
    await m!.waitForOutput(/request in flight, answered in 5000 ms/);
    m!.proc.kill('SIGINT');
    expect(await m!.exited).toEqual({ code: 0, signal: null });
    expect(await slow).toBe('cut');
    expect(m!.output()).toMatch(/SIGINT: fast stop/);
    for (const pid of workerPids(s)) expect(isAlive(pid)).toBe(false);
  });

  test('baton stop waits until the master has exited', async () => {
    const { cfg, s, port } = await start();
    const slow = get(port, '/?delay=1000');
    await m!.waitForOutput(/request in flight, answered in 1000 ms/);
    const r = baton(['stop', '-c', cfg]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^stopped: master pid ${m!.pid} exited`));
    // when `baton stop` returns the master and every worker are gone, the request answered
    expect(isAlive(m!.pid)).toBe(false);
    for (const pid of workerPids(s)) expect(isAlive(pid)).toBe(false);
    expect((await slow).status).toBe(200);
  });

  test('baton stop --fast: workers killed at once, the in-flight request cut; it waits for the exit', async () => {
    const { cfg, s, port } = await start();
    const slow = get(port, '/?delay=10000').then(
      () => 'answered',
      () => 'cut',
    );
    await m!.waitForOutput(/request in flight, answered in 10000 ms/);
    const r = baton(['stop', '--fast', '-c', cfg]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^stopped: master pid ${m!.pid} exited`));
    expect(isAlive(m!.pid)).toBe(false);
    for (const pid of workerPids(s)) expect(isAlive(pid)).toBe(false);
    expect(await slow).toBe('cut');
    expect(m!.output()).toMatch(/fast stop/);
    expect(m!.output()).not.toMatch(/graceful stop/);
    expect(await m!.exited).toEqual({ code: 0, signal: null });
  });

  test('a worker that ignores stopSignal is SIGKILLed after stopTimeoutMs', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'stubborn',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      // sh ignores TERM here, and so does its sleep
      workers: { command: ['sh', '-c', 'trap "" TERM; sleep 600'], ready: 'spawn', stopTimeoutMs: 700 },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    m.proc.kill('SIGTERM');
    expect(await m.exited).toEqual({ code: 0, signal: null });
    expect(m.output()).toMatch(/still running 700 ms after SIGTERM: SIGKILL/);
    expect(m.output()).toMatch(/was killed by SIGKILL/);
    const pid = workerPids(s)[0];
    await waitFor('worker gone', () => !isAlive(pid));
  });

  test('IPv6 and all-address listeners', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'v6',
      listeners: [
        { name: 'v6', tcp: '[::1]:0' },
        { name: 'any', tcp: '*:0' },
      ],
      workers: { command: nodeWorker() },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    expect(s.listeners[0].addresses[0]).toMatch(/^\[::1\]:\d+$/);
    expect(s.listeners[1].addresses[0]).toMatch(/^\[::\]:\d+$/);
    expect((await get(portOf(s, 'v6'), '/', '::1')).status).toBe(200);
    // [::] is dual-stack (the kernel default, as systemd's BindIPv6Only=default): v4 clients too
    expect((await get(portOf(s, 'any'), '/', '127.0.0.1')).status).toBe(200);
    expect((await get(portOf(s, 'any'), '/', '::1')).status).toBe(200);
  });

  test('a stale unix socket file from a dead process is replaced; a live one is an error', async () => {
    const dir = tmpdir();
    const net = await import('node:net');
    const stale = path.join(dir, 'stale.sock');
    // a socket file nobody listens on: bind, then close without unlinking
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(stale, r));
    const live = path.join(dir, 'live.sock');
    const liveSrv = net.createServer();
    await new Promise<void>((r) => liveSrv.listen(live, r));
    // Node unlinks on close; recreate a dead socket file the way a crashed process leaves it
    await new Promise<void>((r) => srv.close(() => r()));
    const fd = (await import('../../src/native')).native.listenSocket(0, stale, 0, 1, 0o600);
    fs.closeSync(fd);
    expect(fs.lstatSync(stale).isSocket()).toBe(true);

    const ok = writeConfig(dir, {
      name: 'unix',
      listeners: [{ name: 'api', unix: 'stale.sock' }],
      workers: { command: nodeWorker() },
    });
    m = startMaster(ok);
    await ready(m);
    expect((await getUnix(stale)).status).toBe(200);
    expect(fs.statSync(stale).mode & 0o777).toBe(0o660);
    await cleanup(m);

    const busy = writeConfig(dir, { name: 'busy', listeners: [{ name: 'api', unix: 'live.sock' }], workers: { command: nodeWorker() } }, 'busy.json');
    m = startMaster(busy);
    expect((await m.exited).code).toBe(1);
    expect(m.output()).toMatch(/listener 'api': cannot bind .*live\.sock: another process is listening there/);
    liveSrv.close();
  });
});
