// baton/worker's serve() and repeated stop signals: under systemd (KillMode=control-group) a
// worker gets SIGTERM from systemd and its stopSignal from the master; a repeated SIGTERM or
// SIGQUIT must not cut a request in flight. SIGINT twice (^C ^C) still exits at once.
import { cleanup, get, isAlive, nodeWorker, ready, sleep, startMaster, tmpdir, waitFor, workerPids, writeConfig, type Master } from '../helpers/proc';

describe('serve(): a stop signal that comes again', () => {
  let m: Master | undefined;
  afterEach(() => cleanup(m));

  const start = async () => {
    const cfg = writeConfig(tmpdir(), { name: 'sigs', listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: nodeWorker(), count: 1 } });
    m = startMaster(cfg);
    const s = await ready(m);
    return { port: Number(/:(\d+)$/.exec(s.listeners[0].addresses[0])![1]), worker: workerPids(s)[0] };
  };

  test.each(['SIGTERM', 'SIGQUIT'] as const)('%s twice: the request in flight is still answered, then the worker exits', async (sig) => {
    const { port, worker } = await start();
    const slow = get(port, '/?delay=1500');
    await sleep(300);
    process.kill(worker, 'SIGTERM');
    await m!.waitForOutput(/SIGTERM: stopping gracefully \(1 connection\(s\) open\)/);
    process.kill(worker, sig);
    await m!.waitForOutput(new RegExp(`${sig}: already stopping \\(1 connection\\(s\\) open\\)`));
    const r = await slow;
    expect([r.status, JSON.parse(r.body).pid]).toEqual([200, worker]);
    await waitFor('the worker to exit', () => !isAlive(worker));
  });

  test('SIGINT twice (^C ^C): exits at once, the request in flight is cut', async () => {
    const { port, worker } = await start();
    const slow = get(port, '/?delay=10000').then(
      () => 'answered',
      (e: NodeJS.ErrnoException) => e.code ?? e.message,
    );
    await sleep(300);
    process.kill(worker, 'SIGINT');
    await m!.waitForOutput(/SIGINT: stopping gracefully/);
    process.kill(worker, 'SIGINT');
    await m!.waitForOutput(/SIGINT again: exiting now/);
    expect(await slow).toBe('ECONNRESET');
    await waitFor('the worker to exit', () => !isAlive(worker));
  });
});
