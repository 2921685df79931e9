// A worker gets its stop signal once. A second one means "exit now" to many servers
// (baton/worker exits at once on it, dropping requests in flight), so a later stop of a
// worker that is already stopping (a stop during a failed reload's drain, a rollback's
// stop after its generation failed) must not send it again.
import fs from 'node:fs';
import path from 'node:path';
import { baton, cleanupAll, ready, startMaster, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

// never READY=1; logs each SIGTERM; takes 3 s to exit after the first
const WORKER = [
  'import os, signal, sys, time',
  "log = sys.argv[1] + '/sigterm.' + os.environ['BATON_GENERATION']",
  'got = []',
  "def on_term(sig, frame):\n    got.append(1)\n    open(log, 'a').write('TERM\\n')",
  'signal.signal(signal.SIGTERM, on_term)',
  "if os.environ['BATON_GENERATION'] == '1':\n    import socket\n    a = os.environ['NOTIFY_SOCKET']\n    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n    s.sendto(b'READY=1', '\\0' + a[1:] if a.startswith('@') else a)",
  'while not got: time.sleep(0.05)',
  'time.sleep(3)',
].join('\n');

describe('the stop signal', () => {
  let m: Master | undefined;
  let dir: string | undefined;
  afterEach(() => cleanupAll(m, dir));

  test('is sent once to a worker that is already stopping: a failed reload\'s worker, then baton stop', async () => {
    dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'once',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: ['python3', '-c', WORKER, dir], count: 1, readyTimeoutMs: 500, stopTimeoutMs: 10000 },
    });
    m = startMaster(cfg);
    await ready(m);
    // generation 2 never gets ready: the reload fails and its worker gets SIGTERM
    expect(baton(['reload', '-c', cfg]).code).toBe(1);
    const log2 = path.join(dir, 'sigterm.2');
    await waitFor('the failed generation\'s worker to get SIGTERM', () => fs.existsSync(log2));
    // while it drains, stop the master: it stops every worker, generation 2's included
    const stop = baton(['stop', '-c', cfg]);
    expect(stop.code).toBe(0);
    expect(fs.readFileSync(log2, 'utf8')).toBe('TERM\n');
    expect(fs.readFileSync(path.join(dir, 'sigterm.1'), 'utf8')).toBe('TERM\n');
  });
});
