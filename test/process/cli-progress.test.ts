// `baton reload` on a terminal shows what it waits for (workers ready n/m of the new generation),
// redrawn in place and wiped before the result; piped, only the result. `baton stop` says when the
// deadline cut what the workers still held (a request longer than stopTimeoutMs).
import { onPty } from '../helpers/pty';
import http from 'node:http';
import { baton, BATON, cleanup, nodeWorker, portOf, ready, startMaster, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

describe('the client shows progress on a terminal, and an honest result', () => {
  let m: Master | undefined;
  afterEach(() => cleanup(m));

  test('reload on a pty: "generation 2: n/2 ready" redrawn in place, wiped, then the result; piped: the result alone', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'progress',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: nodeWorker(), count: 2, readyTimeoutMs: 20000, env: { WORKER_READY_DELAY_MS: '1500' } },
    });
    m = startMaster(cfg);
    await ready(m);
    const out = onPty(`${JSON.stringify(process.execPath)} ${BATON} reload -c ${cfg}`);
    expect(out).toContain('EXIT=0');
    expect(out).toMatch(/\r\x1b\[2Kreload: generation 2: [01]\/2 ready.*\(\d+\.\d s\)/);
    // wiped before the result, which starts a line of its own
    expect(out).toMatch(/\r\x1b\[2Kreloaded: generation 2 serving/);
    const piped = baton(['reload', '-c', cfg]);
    expect({ code: piped.code, stderr: piped.stderr }).toEqual({ code: 0, stderr: '' });
    expect(piped.stdout).toMatch(/^reloaded: generation 3 serving \(\d+ ms\)\n$/);
  });

  test('stop with a request longer than stopTimeoutMs: it says the deadline cut it (exit 0), where it said only "stopped"', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'honest-stop',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: nodeWorker(), count: 1, stopTimeoutMs: 1500 },
    });
    m = startMaster(cfg);
    const port = portOf(await ready(m));
    let cut = false;
    const req = http.get({ host: '127.0.0.1', port, path: '/?delay=10000', agent: false }, (res) => res.resume());
    req.on('error', () => (cut = true));
    await m.waitForOutput(/request in flight/);
    const r = baton(['stop', '-c', cfg]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('baton: workers were still running at the deadline (workers.stopTimeoutMs, 1500 ms): SIGKILLed, and the requests they held were cut');
    expect(r.stdout).toMatch(/^stopped: master pid \d+ exited after \d+ ms\n$/);
    await waitFor('the client to see its request cut', () => cut);
  });

  test('a stop that finishes in time says nothing more', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, { name: 'quick-stop', listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: nodeWorker(), count: 1, stopTimeoutMs: 5000 } });
    m = startMaster(cfg);
    await ready(m);
    const r = baton(['stop', '-c', cfg]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  });
});
