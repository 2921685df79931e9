// The master's stderr is a socket (journald's stream under systemd; here a socketpair, as a
// Node parent's stdio 'pipe' is). Its open file description is shared with every worker:
// the master must never set O_NONBLOCK on it, or the workers' own writes get EAGAIN. A reader
// that stalls still costs the master dropped lines only.
import fs from 'node:fs';
import path from 'node:path';
import { cleanupAll, FIXTURES, get, portOf, ready, startMaster, tmpdir, waitFor, workerPids, writeConfig, type Master } from '../helpers/proc';

const O_NONBLOCK = 0o4000;

/** fd 2's file status flags as the process `pid` sees them (the open file description's). */
function stderrFlags(pid: number): number {
  const info = fs.readFileSync(`/proc/${pid}/fdinfo/2`, 'utf8');
  return parseInt(/^flags:\s*([0-7]+)/m.exec(info)![1], 8);
}

// the smallest send buffer the kernel allows on fd 2, so that a reader that stalls fills it
// after a few lines; then exec the master (same pid)
const SMALL_SNDBUF = [
  'python3',
  '-c',
  'import os, socket, sys; s = socket.socket(fileno=2); s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1); s.detach(); os.execvp(sys.argv[1], sys.argv[1:])',
];

describe('stderr is a socket shared with the workers', () => {
  let m: Master | undefined;
  let dir: string | undefined;
  afterEach(() => cleanupAll(m, dir));

  test('the master logs without setting O_NONBLOCK on fd 2 (a worker sees it blocking); a stalled reader costs dropped lines (EAGAIN), never a blocked master', async () => {
    dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'stderr-socket',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      // a Python worker: it leaves fd 2's flags alone (a Node worker's process.stderr would set O_NONBLOCK itself)
      workers: { command: ['python3', path.join(FIXTURES, 'py-worker.py')], count: 1, readyTimeoutMs: 10000, stopTimeoutMs: 10000 },
    });
    m = startMaster(cfg, { wrapper: SMALL_SNDBUF });
    const s0 = await ready(m);
    expect(s0.log.target).toBe('stderr (socket)');
    const [worker] = workerPids(s0);

    // a control connection closed after the worker started (Node's net.Socket destroy reads
    // process.stderr, which would create Node's stream on fd 2), then a line logged
    await m.status();
    m.proc.kill('SIGUSR1');
    await m.waitForOutput(/SIGUSR1: log file reopened/);
    expect((stderrFlags(worker) & O_NONBLOCK).toString(8)).toBe('0');

    // the test stops reading: each SIGUSR1 logs a line until the socket is full
    m.proc.stderr!.pause();
    const full = await waitFor(
      'lines dropped on the full socket',
      async () => {
        m!.proc.kill('SIGUSR1');
        const s = await m!.status();
        return s.log.failing ? s : undefined;
      },
      30000,
      20,
    );
    expect(full.log.failing!.error).toMatch(/^EAGAIN/);
    expect((await get(portOf(full))).status).toBe(200);
    expect((stderrFlags(worker) & O_NONBLOCK).toString(8)).toBe('0');

    // read again (what the test reads is read on a later tick): once a line goes out, one
    // more says how many were lost
    m.proc.stderr!.resume();
    const recovered = /log: \d+ line\(s\) dropped since \S+ \(stderr \(socket\): EAGAIN[^)]*\)\); writing again/;
    await waitFor('the dropped-lines line', () => recovered.test(m!.output()) || void m!.proc.kill('SIGUSR1'), 20000, 200);
    expect((await m.status()).log.failing).toBeNull();
    expect((stderrFlags(worker) & O_NONBLOCK).toString(8)).toBe('0');
  });
});
