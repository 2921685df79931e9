import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { hostFits } from '../../src/adapt/host';
import { readPidfile } from '../../src/system/pidfile';
import { flowing, startLoad, type Load } from '../helpers/load';
import { startService, stopService, type Service } from '../helpers/service';
import { batonAsync, cleanup, FIXTURES, get, isAlive, ready, startMaster, tmpdir, waitFor, writeConfig } from '../helpers/proc';

// Node apps written for a port, with no signal handling, run by baton without a line changed
// (workers.adapt: the adapter preloaded with NODE_OPTIONS). From npm: express, fastify.
const APP = (name: string) => path.join(FIXTURES, 'unmodified', `${name}-app.js`);

const service = (workers: Record<string, unknown>): Promise<Service> =>
  startService(
    {
      name: 'adapt',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { count: 2, readyTimeoutMs: 15000, stopTimeoutMs: 10000, ...workers },
    },
    { readyTimeoutMs: 30000 },
  );

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/** A port nothing listens on now, on 127.0.0.1. */
const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

/** Whether process `pid` holds an fd of the socket listening on 127.0.0.1:`port` (the kernel's word: its inode). */
function holdsListener(pid: number, port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const line = fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').find((l) => new RegExp(`^\\s*\\d+: 0100007F:${hexPort} 00000000:0000 0A `).test(l));
  if (!line) throw new Error(`nothing listens on 127.0.0.1:${port}`);
  const inode = line.trim().split(/\s+/)[9];
  return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`;
    } catch {
      return false; /* closed meanwhile */
    }
  });
}

/**
 * Reloads and upgrades per app under load: 20, or BATON_TEST_SOAK (make test's second pass, on
 * Node 18, runs 5: the same paths, a shorter soak).
 */
const SOAK = Number(process.env.BATON_TEST_SOAK || 20);

describe('unmodified Node apps (workers.adapt)', () => {
  let svc: Service | undefined;
  let load: Load | undefined;
  afterEach(async () => {
    await load?.stop();
    load = undefined;
    await stopService(svc);
    svc = undefined;
  });

  test.each(['http', 'express', 'fastify'])(
    `a %s app serves on baton's socket; ${SOAK} reloads and ${SOAK} upgrades under keep-alive and new-connection load: 0 failed`,
    async (name) => {
      svc = await service({ command: ['node', APP(name)] });
      const body = JSON.parse((await get(svc.port)).body);
      expect(body.app).toBe(name);
      load = startLoad(svc.port, 4, 4);
      await flowing(load);
      for (let i = 0; i < SOAK; i++) {
        const r = await batonAsync(['reload', '-c', svc.cfg]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        await flowing(load, 20);
      }
      for (let i = 0; i < SOAK; i++) {
        const old = readPidfile(svc.pidfile)!;
        const r = await batonAsync(['upgrade', '-c', svc.cfg]);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        await waitFor(`old master ${old} to exit`, () => !isAlive(old));
        await flowing(load, 20);
      }
      const stats = await load.finish(SOAK * 25);
      load = undefined;
      console.log(`${name}: ${SOAK} reloads + ${SOAK} upgrades: ${stats.keepalive.ok} keep-alive and ${stats.fresh.ok} new-connection requests answered, ${stats.failed} failed ${JSON.stringify(stats.errors)}`);
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
    const old = Number((await waitFor('the old worker\'s own handler to run', () => fs.existsSync(mark) && fs.readFileSync(mark, 'utf8')))
      .match(/^own handler (\d+)\n/)![1]);
    await waitFor('the old worker to exit', () => !isAlive(old));
    // its handler ran to its own exit: no drain of the adapter's exited the worker beside it
    expect(fs.readFileSync(mark, 'utf8')).toBe(`own handler ${old}\nown handler done ${old}\n`);
    expect(svc.m.output()).not.toMatch(/SIGTERM: stopping gracefully/);
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
    const stats = await load.finish();
    load = undefined;
  }, 60000);

  // A Node helper the app starts before its own listen() (a metrics server on 127.0.0.1), as
  // the app itself, under npm start, and as an app whose main module is named like npm's.
  test.each([
    ['node app.js', ['node', 'app.js']],
    ['npm start', ['npm', 'start']],
    ['node bin/npm-cli.js (an app named like npm: not a launcher)', ['node', 'bin/npm-cli.js']],
  ])(
    "%s: a helper started before the app's listen() gets neither baton's socket nor the worker's READY=1",
    async (_, command) => {
      const dir = tmpdir();
      const helperPort = await freePort();
      fs.writeFileSync(
        path.join(dir, 'helper.js'),
        `const s = require('http').createServer((q, r) => r.end(JSON.stringify({ who: 'helper', named: process.env.LISTEN_PID === String(process.pid), adapter: /adapt\\.js/.test(process.env.NODE_OPTIONS ?? '') })));
        s.listen(${helperPort}, '127.0.0.1', () => console.log(JSON.stringify(s.address())));\n`,
      );
      const app = `const fs = require('fs');
        const path = require('path');
        const helper = require('child_process').spawn(process.execPath, [path.join(${JSON.stringify(dir)}, 'helper.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
        helper.stdout.once('data', (d) => {
          fs.writeFileSync(path.join(${JSON.stringify(dir)}, 'helper.json'), JSON.stringify({ pid: helper.pid, address: JSON.parse(d) }));
          // the helper's listen came first: the app's own a little later
          setTimeout(() => require('http').createServer((q, r) => r.end(JSON.stringify({ who: 'app' }))).listen(process.env.PORT || 3000), 300);
        });\n`;
      fs.writeFileSync(path.join(dir, 'app.js'), app);
      fs.mkdirSync(path.join(dir, 'bin'));
      fs.writeFileSync(path.join(dir, 'bin', 'npm-cli.js'), app);
      fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', scripts: { start: 'node app.js' } }));
      svc = await service({ command, cwd: dir, count: 1 });
      const helper = JSON.parse(fs.readFileSync(path.join(dir, 'helper.json'), 'utf8')) as { pid: number; address: net.AddressInfo };
      // the helper serves where it asked, on its own socket: not named in LISTEN_PID, no adapter, no fd of baton's
      expect(helper.address).toMatchObject({ address: '127.0.0.1', port: helperPort });
      expect(JSON.parse((await get(helperPort)).body)).toEqual({ who: 'helper', named: false, adapter: false });
      expect(holdsListener(helper.pid, svc.port)).toBe(false);
      for (let i = 0; i < 20; i++) expect(JSON.parse((await get(svc.port)).body).who).toBe('app');
      // READY=1 came from the app's listen (on PORT, baton's port), not the helper's
      const [w] = (await svc.m.status()).generations[0].workers;
      expect(w.status).toBe(`serving http (the app's listen on port ${svc.port})`);
    },
    30000,
  );

  test("an app that listens on 127.0.0.1 is not put on baton's socket bound to every address: it binds as asked, a warning says why, and it never gets ready", async () => {
    const dir = tmpdir();
    const appPort = await freePort();
    fs.writeFileSync(path.join(dir, 'app.js'), `require('http').createServer((q, r) => r.end('local only')).listen(${appPort}, '127.0.0.1');\n`);
    const cfg = writeConfig(dir, {
      listeners: [{ name: 'http', tcp: '0.0.0.0:0' }],
      workers: { command: ['node', path.join(dir, 'app.js')], count: 1, readyTimeoutMs: 3000 },
    });
    const m = startMaster(cfg);
    try {
      await m.waitForOutput(
        new RegExp(`listen on 127\\.0\\.0\\.1:${appPort} is left to the app: baton's socket http is bound to 0\\.0\\.0\\.0:\\d+, not to the 127\\.0\\.0\\.1 the app asked for`),
      );
      // the warning comes as listen() is called, the bind a little later
      const own = await waitFor('the app on the port it asked for', async () => (await get(appPort).catch(() => undefined))?.body);
      expect(own).toBe('local only');
      expect((await m.exited).code).not.toBe(0);
      expect(m.output()).toMatch(/did not send READY=1 within 3000 ms \(the Node adapter sends it once the app's listen\(\) takes one of baton's sockets; a listen on a host/);
    } finally {
      await cleanup(m);
    }
  });
});

describe("the adapter's host rule: which socket a listen() on a host may take", () => {
  test.each([
    // no host, or every address: any socket
    [undefined, '0.0.0.0', true],
    ['0.0.0.0', '127.0.0.1', true],
    ['::', '::', true],
    // loopback: a loopback socket only
    ['127.0.0.1', '127.0.0.1', true],
    ['localhost', '127.0.0.1', true],
    ['::1', '127.0.0.1', true],
    ['127.0.0.2', '::1', true],
    ['127.0.0.1', '0.0.0.0', false],
    ['localhost', '::', false],
    ['::1', '10.0.0.5', false],
    ['::ffff:127.0.0.1', '0.0.0.0', false],
    // another address: that address only; a name: none
    ['10.0.0.5', '10.0.0.5', true],
    ['10.0.0.5', '0.0.0.0', false],
    ['10.0.0.5', '10.0.0.6', false],
    ['2001:db8::1', '2001:db8:0:0::1', true],
    ['example.com', '0.0.0.0', false],
    // a unix socket (no address): any
    ['127.0.0.1', undefined, true],
  ])('listen on %s, socket bound to %s: %s', (host, address, fits) => {
    expect(hostFits(host, address)).toBe(fits);
  });
});
