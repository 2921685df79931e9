import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { readPidfile } from '../src/system/pidfile';
import { flowing, startLoad, type Load } from './helpers/load';
import { batonAsync, cleanup, FIXTURES, get, isAlive, portOf, ready, startMaster, SUBREAPER, tmpdir, waitFor, writeConfig, type Master } from './helpers/proc';

// Node apps written for a port, with no signal handling, run by baton without a line changed
// (workers.adapt: the adapter preloaded with NODE_OPTIONS). From npm: express, fastify.
const APP = (name: string) => path.join(FIXTURES, 'unmodified', `${name}-app.js`);

interface Svc {
  m: Master;
  dir: string;
  cfg: string;
  port: number;
  pidfile: string;
}

async function service(workers: Record<string, unknown>, env: Record<string, string> = {}): Promise<Svc> {
  const dir = tmpdir();
  const cfg = writeConfig(dir, {
    name: 'adapt',
    listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
    workers: { count: 2, readyTimeoutMs: 15000, stopTimeoutMs: 10000, ...workers },
  });
  const m = startMaster(cfg, { env, wrapper: SUBREAPER });
  const s = await ready(m, 30000);
  return { m, dir, cfg, port: portOf(s), pidfile: path.join(dir, 'run', 'baton.pid') };
}

async function stop(svc: Svc | undefined): Promise<void> {
  if (!svc) return;
  const pid = readPidfile(svc.pidfile);
  if (pid && isAlive(pid)) process.kill(pid, 'SIGTERM');
  const t = setTimeout(() => void cleanup(svc.m), 20000);
  await svc.m.exited;
  clearTimeout(t);
}

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

describe('unmodified Node apps (workers.adapt)', () => {
  let svc: Svc | undefined;
  let load: Load | undefined;
  afterEach(async () => {
    await load?.stop();
    load = undefined;
    await stop(svc);
    svc = undefined;
  });

  test.each(['http', 'express', 'fastify'])(
    'a %s app serves on baton\'s socket; 20 reloads and 20 upgrades under keep-alive and new-connection load: 0 failed',
    async (name) => {
      svc = await service({ command: ['node', APP(name)] });
      const body = JSON.parse((await get(svc.port)).body);
      expect(body.app).toBe(name);
      load = startLoad(svc.port, 4, 4);
      await flowing(load);
      for (let i = 0; i < 20; i++) {
        const r = await batonAsync(['reload', '-c', svc.cfg]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        await flowing(load, 20);
      }
      for (let i = 0; i < 20; i++) {
        const old = readPidfile(svc.pidfile)!;
        const r = await batonAsync(['upgrade', '-c', svc.cfg]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        await waitFor(`old master ${old} to exit`, () => !isAlive(old));
        await flowing(load, 20);
      }
      const stats = await load.stop();
      load = undefined;
      console.log(`${name}: 20 reloads + 20 upgrades: ${stats.keepalive.ok} keep-alive and ${stats.fresh.ok} new-connection requests answered, ${stats.failed} failed ${JSON.stringify(stats.errors)}`);
      expect(stats.keepalive.ok).toBeGreaterThan(0);
      expect(stats.fresh.ok).toBeGreaterThan(0);
      expect(stats.failed).toBe(0);
    },
    240000,
  );

  test('the app listens on baton\'s socket, not on the port it names: PORT is baton\'s; 3000 stays free', async () => {
    svc = await service({ command: ['node', APP('http')], env: { PORT: '3000' } });
    expect(JSON.parse((await get(svc.port)).body).app).toBe('http');
    expect(await portFree(3000)).toBe(true);
    const s = await svc.m.status();
    expect(s.generations[0].workers.every((w) => /serving http \(the app's listen on port 3000\)/.test(w.status ?? ''))).toBe(true);
  });

  test('adapt "off": the app binds the port it names, and baton never hears READY=1', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: ['node', APP('http')], adapt: 'off', env: { PORT: '0' }, count: 1, readyTimeoutMs: 1500 },
    });
    const m = startMaster(cfg);
    try {
      expect((await m.exited).code).not.toBe(0);
      expect(m.output()).toMatch(/did not send READY=1 within 1500 ms/);
    } finally {
      await cleanup(m);
    }
  });

  test('an app with its own SIGTERM handler keeps it: the adapter stands down', async () => {
    const mark = path.join(tmpdir(), 'mark');
    svc = await service({ command: ['node', APP('own-sigterm')], count: 1, env: { MARK_FILE: mark } });
    const r = await batonAsync(['reload', '-c', svc.cfg]);
    expect(r.code).toBe(0);
    await waitFor('the old worker\'s own handler to run', () => fs.existsSync(mark));
    expect(fs.readFileSync(mark, 'utf8')).toMatch(/^own handler \d+\n$/);
  });

  test('npm start: the app npm starts takes the sockets and gets ready; a slow request in flight and 3 reloads under load: 0 failed', async () => {
    const dir = tmpdir();
    // an ordinary app with a slow route (the process npm starts, not the worker baton started)
    fs.writeFileSync(
      path.join(dir, 'app.js'),
      `const http = require('http');
      http.createServer((req, res) => setTimeout(() => res.end(JSON.stringify({ app: 'npm', pid: process.pid })), req.url === '/slow' ? 2000 : 0))
        .listen(process.env.PORT || 3000);\n`,
    );
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', scripts: { start: 'node app.js' } }));
    svc = await service({ command: ['npm', 'start'], cwd: dir });
    const first = JSON.parse((await get(svc.port)).body);
    expect(first.app).toBe('npm');
    const s = await svc.m.status();
    expect(s.generations[0].workers.map((w) => w.pid)).not.toContain(first.pid);
    load = startLoad(svc.port, 4, 4);
    await flowing(load);
    const slow = get(svc.port, '/slow');
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 3; i++) {
      const r = await batonAsync(['reload', '-c', svc.cfg]);
      expect(r.code).toBe(0);
      await flowing(load, 20);
    }
    expect((await slow).status).toBe(200);
    const stats = await load.stop();
    load = undefined;
    expect(stats.failed).toBe(0);
  }, 60000);
});
