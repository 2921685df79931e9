import { spawn } from 'node:child_process';
import net from 'node:net';
import { flowing, startLoad } from '../helpers/load';
import { BATON, cleanup, get, nodeWorker, portOf, ready, startMaster, tmpdir, writeConfig, type Master, freePort } from '../helpers/proc';


describe('socket activation (real systemd-socket-activate)', () => {
  let m: Master | undefined;
  afterEach(() => cleanup(m));

  test('sockets named by LISTEN_FDNAMES are adopted by name; the rest are bound from config', async () => {
    const dir = tmpdir();
    const [p1, p2] = [await freePort(), await freePort()];
    const cfg = writeConfig(dir, {
      name: 'sa',
      listeners: [
        { name: 'extra', tcp: '127.0.0.1:0' },
        { name: 'web' },
      ],
      workers: { command: nodeWorker(), count: 2 },
    });
    m = startMaster(cfg, {
      wrapper: ['systemd-socket-activate', '-l', `127.0.0.1:${p1}`, '-l', `127.0.0.1:${p2}`, '--fdname=web'],
    });
    // systemd-socket-activate starts baton on the first connection, which a worker then answers
    await m.waitForOutput(/Listening on 127.0.0.1:\d+ as 4/);
    const first = get(p2);
    const s = await ready(m);
    expect((await first).status).toBe(200);
    expect(s.pid).toBe(m.pid); // systemd-socket-activate execs baton: LISTEN_PID matches
    const web = s.listeners.find((l) => l.name === 'web')!;
    expect(web.source).toBe('systemd');
    expect(web.addresses).toEqual([`127.0.0.1:${p1}`, `127.0.0.1:${p2}`]);
    expect(s.listeners.map((l) => l.name)).toEqual(['extra', 'web']);
    for (const port of [p1, p2, portOf(s, 'extra')]) expect((await get(port)).status).toBe(200);

    // reload keeps the inherited sockets: no request fails on them
    const load = startLoad(p1, 2, 2);
    await flowing(load);
    m.proc.kill('SIGHUP');
    await m.waitForOutput(/reload done: generation 2/);
    await flowing(load);
    await load.finish();
  });

  test('without a listeners key every inherited socket is served, in inherited order', async () => {
    const dir = tmpdir();
    const port = await freePort();
    const cfg = writeConfig(dir, { name: 'all', workers: { command: nodeWorker() } });
    m = startMaster(cfg, { wrapper: ['systemd-socket-activate', '-l', `127.0.0.1:${port}`] });
    await m.waitForOutput(/Listening on/);
    const first = get(port);
    const s = await ready(m);
    expect((await first).status).toBe(200);
    // used as systemd made it: no noDelay of baton's
    expect(s.listeners).toEqual([{ name: 'unknown', source: 'systemd', addresses: [`127.0.0.1:${port}`], fds: [3], options: [expect.objectContaining({ noDelay: false })] }]);
    expect((await get(port)).status).toBe(200);
  });

  test('a configured listener with no address that systemd did not pass is a clear error, exit 78 (a config error: the unit does not restart it)', async () => {
    const dir = tmpdir();
    const port = await freePort();
    const cfg = writeConfig(dir, { name: 'missing', listeners: [{ name: 'api' }], workers: { command: nodeWorker() } });
    m = startMaster(cfg, { wrapper: ['systemd-socket-activate', '-l', `127.0.0.1:${port}`, '--fdname=web'] });
    await m.waitForOutput(/Listening on/);
    const c = net.connect(port, '127.0.0.1');
    c.on('error', () => undefined);
    expect((await m.exited).code).toBe(78);
    c.destroy();
    expect(m.output()).toMatch(/listener 'api' has no tcp or unix address and no inherited socket has that name \(inherited: web\); give it an address, or name a socket so in the unit's FileDescriptorName=/);
  });
});

describe('bad LISTEN_* values', () => {
  const run = (env: Record<string, string>, wrapper: string[] = []) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const dir = tmpdir();
      const cfg = writeConfig(dir, { name: 'badfds', workers: { command: nodeWorker() } });
      const argv = [...wrapper, process.execPath, BATON, 'run', '-c', cfg];
      const p = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (out += d));
      p.once('exit', (code) => resolve({ code, out }));
    });
  // `exec` keeps the shell's pid, so $$ is the master's pid
  const sh = (assign: string) => ['sh', '-c', `${assign} exec "$0" "$@"`];

  test.each([
    [{ LISTEN_FDS: 'two' }, sh('LISTEN_PID=$$'), /LISTEN_FDS='two' is not a count of file descriptors/],
    [{ LISTEN_FDS: '1', LISTEN_PID: '1' }, [], /LISTEN_PID=1 names another process \(this is pid \d+\): the LISTEN_FDS=1 sockets were meant for it/],
    [{ LISTEN_FDS: '1' }, [], /LISTEN_FDS=1 is set but LISTEN_PID is not/],
    [{ LISTEN_FDS: '1', LISTEN_FDNAMES: 'a:b' }, sh('LISTEN_PID=$$; export LISTEN_PID;'), /LISTEN_FDNAMES has 2 name\(s\) \(a:b\) but LISTEN_FDS=1/],
    [{ LISTEN_FDS: '2' }, sh('exec 3</dev/null; exec 4>&-; LISTEN_PID=$$; export LISTEN_PID;'), /LISTEN_FDS=2: fd 3 \(name 'unknown'\) is not a socket/],
  ])('%j is refused: exit 78 with a clear message', async (env, wrapper, re) => {
    const r = await run(env as Record<string, string>, wrapper as string[]);
    expect(r.out).toMatch(re);
    expect(r.out).toMatch(/^baton: bad inherited sockets: /);
    expect(r.code).toBe(78);
  });
});
