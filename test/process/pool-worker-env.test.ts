import fs from 'node:fs';
import path from 'node:path';
import { ROOT, cleanupAll, ready, startMaster, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

describe('a worker without sockets', () => {
  let m: Master | undefined;
  let dir: string | undefined;
  afterEach(() => cleanupAll(m, dir));

  test('gets none of LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID (as systemd), even from workers.env', async () => {
    dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'nosockets',
      listeners: [],
      workers: { command: ['sh', '-c', 'env > env.out; exec sleep 600'], ready: 'spawn', env: { LISTEN_PID: '1', LISTEN_FDNAMES: 'x' } },
    });
    m = startMaster(cfg);
    await ready(m);
    const out = path.join(dir, 'env.out');
    const env = await waitFor('the worker\'s environment', () => fs.existsSync(out) && fs.readFileSync(out, 'utf8').includes('BATON_GENERATION=') && fs.readFileSync(out, 'utf8'));
    expect(env).not.toMatch(/^LISTEN_/m);
    expect(env).toMatch(/^BATON_WORKER_ID=0$/m);
  });

  test('on baton/worker, serves on its fallback address and gets ready', async () => {
    dir = tmpdir();
    const script =
      `const w = require(${JSON.stringify(path.join(ROOT, 'dist', 'serve', 'index.js'))});` +
      `w.serve(require('node:http').createServer((q, s) => s.end('ok')), { fallback: { port: 0, host: '127.0.0.1' } })` +
      `.then(() => w.notify({ READY: 1 }), (e) => { console.error(e.message); process.exit(1); });`;
    const cfg = writeConfig(dir, { name: 'nosockets', listeners: [], workers: { command: [process.execPath, '-e', script], readyTimeoutMs: 20000 } });
    m = startMaster(cfg);
    const s = await ready(m);
    expect(s.generations[0].workers[0].state).toBe('ready');
    expect(m.output()).not.toMatch(/LISTEN_PID or LISTEN_FDNAMES is set but LISTEN_FDS is not/);
  });
});
