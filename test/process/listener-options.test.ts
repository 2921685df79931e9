import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  baton, cleanupAll, FIXTURES, nodeWorker, NOBODY, portOf, ready, rootOnly, startMaster, tmpdir, writeConfig, type Master,
} from '../helpers/proc';

// Every option is read back with getsockopt(2) by a worker that sets none itself
// (fixtures/sockopt-worker.py): on its listening socket (fd 3, the master's socket) and on a
// connection it accepted from it (which inherits what Linux copies from the listener).

const WORKER = ['python3', path.join(FIXTURES, 'sockopt-worker.py')];

interface Report {
  pid: number;
  name: string;
  listener: Record<string, unknown>;
  connection: Record<string, unknown>;
}

/** Connects and reads the worker's one-line report. */
function report(to: { port: number; host?: string } | { path: string }): Promise<Report> {
  return new Promise((resolve, reject) => {
    // a byte first: a listener with TCP_DEFER_ACCEPT queues a connection only once data came
    const c = net.connect(to as net.NetConnectOpts, () => c.write('?'));
    let text = '';
    c.setEncoding('utf8');
    c.on('data', (d) => (text += d));
    c.on('end', () => {
      try {
        resolve(JSON.parse(text));
      } catch (e) {
        reject(new Error(`not a report: ${JSON.stringify(text)}: ${(e as Error).message}`));
      }
    });
    c.on('error', reject);
  });
}

let m: Master | undefined;
let dir: string | undefined;
afterEach(async () => {
  await cleanupAll(m, dir);
  m = dir = undefined;
});

function start(listeners: unknown[], extra: Record<string, unknown> = {}): { cfg: string; m: Master } {
  dir = tmpdir();
  const cfg = writeConfig(dir, { name: 'sockopts', listeners, workers: { command: WORKER, count: 1, readyTimeoutMs: 10000, stopTimeoutMs: 2000 }, ...extra });
  m = startMaster(cfg);
  return { cfg, m };
}

const rewrite = (cfg: string, edit: (c: { listeners: Record<string, unknown>[] }) => void) => {
  const c = JSON.parse(fs.readFileSync(cfg, 'utf8'));
  edit(c);
  fs.writeFileSync(cfg, JSON.stringify(c));
};

describe('listener options: set on the sockets baton binds, as systemd.socket(5)', () => {
  test('every unprivileged tcp option, read back on the listening socket and on an accepted connection', async () => {
    start([
      {
        name: 'http',
        tcp: '127.0.0.1:0',
        keepAlive: true,
        keepAliveTimeSec: 30,
        keepAliveIntervalSec: 5,
        keepAliveProbes: 4,
        deferAcceptSec: 3,
        freeBind: true,
        receiveBuffer: '64K',
        sendBuffer: 32768,
        ipTOS: 'low-delay',
        priority: 3,
        tcpCongestion: 'reno',
      },
    ]);
    const s = await ready(m!);
    const r = await report({ port: portOf(s) });
    const want = {
      noDelay: true,
      keepAlive: true,
      keepAliveTimeSec: 30,
      keepAliveIntervalSec: 5,
      keepAliveProbes: 4,
      deferAcceptSec: 3,
      freeBind: true,
      transparent: false,
      bindToDevice: '',
      // the kernel reports twice the size set (socket(7))
      receiveBuffer: 2 * 65536,
      sendBuffer: 2 * 32768,
      mark: 0,
      ipTOS: 0x10,
      // set after IP_TOS, which sets a priority of its own (6 for low-delay)
      priority: 3,
      tcpCongestion: 'reno',
    };
    expect(r.listener).toEqual(want);
    // what an accepted connection inherits from the listener
    expect(r.connection).toMatchObject({ noDelay: true, keepAlive: true, keepAliveTimeSec: 30, keepAliveIntervalSec: 5, keepAliveProbes: 4, tcpCongestion: 'reno' });
    // status reads the master's socket back the same way
    expect(s.listeners[0].options).toEqual([want]);
    const text = baton(['status', '-c', m!.config]).stdout;
    expect(text).toContain('noDelay keepAlive keepAliveTimeSec=30 keepAliveIntervalSec=5 keepAliveProbes=4 deferAcceptSec=3');
  });

  test('noDelay defaults to true: a worker that sets nothing gets TCP_NODELAY on its connections; noDelay: false leaves it off', async () => {
    start([
      { name: 'http', tcp: '127.0.0.1:0' },
      { name: 'off', tcp: '127.0.0.1:0', noDelay: false },
    ]);
    const s = await ready(m!);
    const on = await report({ port: portOf(s) });
    const off = await report({ port: portOf(s, 'off') });
    expect([on.name, on.listener.noDelay, on.connection.noDelay]).toEqual(['http', true, true]);
    expect([off.name, off.listener.noDelay, off.connection.noDelay]).toEqual(['off', false, false]);
  });

  test('deferAcceptSec is rounded up by the kernel to its SYN-ACK retransmissions (5 → 7)', async () => {
    start([{ name: 'http', tcp: '127.0.0.1:0', deferAcceptSec: 5 }]);
    const s = await ready(m!);
    expect((await report({ port: portOf(s) })).listener.deferAcceptSec).toBe(7);
  });

  const ipv6 = fs.existsSync('/proc/net/if_inet6') ? test : test.skip;
  ipv6('bindIPv6Only: ipv6-only refuses IPv4 on [::]; both takes it', async () => {
    start([
      { name: 'only', tcp: '[::]:0', bindIPv6Only: 'ipv6-only' },
      { name: 'both', tcp: '[::]:0', bindIPv6Only: 'both' },
    ]);
    const s = await ready(m!);
    const only = await report({ port: portOf(s, 'only'), host: '::1' });
    expect(only.listener.bindIPv6Only).toBe('ipv6-only');
    await expect(report({ port: portOf(s, 'only'), host: '127.0.0.1' })).rejects.toThrow(/ECONNREFUSED/);
    const both = await report({ port: portOf(s, 'both'), host: '127.0.0.1' });
    expect(both.listener.bindIPv6Only).toBe('both');
  });

  test('a unix listener: its buffers, read back in the worker', async () => {
    const d = tmpdir();
    const sock = path.join(d, 'u.sock');
    try {
      start([{ name: 'u', unix: sock, mode: '0640', sendBuffer: 100000 }]);
      const s = await ready(m!);
      const r = await report({ path: sock });
      expect(r.listener.sendBuffer).toBe(200000);
      expect(s.listeners[0].options![0]).toMatchObject({ sendBuffer: 200000, mode: '0640', uid: process.geteuid!() });
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});

rootOnly('listener options that need privileges (run as root here)', () => {
  test('transparent, mark, priority above 6, bindToDevice: read back on the listening socket and the connection', async () => {
    start([{ name: 'http', tcp: '127.0.0.1:0', transparent: true, mark: 0xfffffffe, priority: 7, bindToDevice: 'lo' }]);
    const s = await ready(m!);
    const r = await report({ port: portOf(s) });
    // (Python reads SO_MARK as a signed int)
    expect({ ...r.listener, mark: (r.listener.mark as number) >>> 0 }).toMatchObject({ transparent: true, mark: 0xfffffffe, priority: 7, bindToDevice: 'lo' });
    expect({ ...r.connection, mark: (r.connection.mark as number) >>> 0 }).toMatchObject({ mark: 0xfffffffe, noDelay: true });
    expect(s.listeners[0].options![0]).toMatchObject({ transparent: true, mark: 0xfffffffe, priority: 7, bindToDevice: 'lo' });
  });

  test('bindToDevice an interface that does not exist: start-up fails naming the listener and the key', async () => {
    start([{ name: 'http', tcp: '127.0.0.1:0', bindToDevice: 'nosuchif0' }]);
    await expect(ready(m!)).rejects.toThrow(/master exited \(1\) before it was ready/);
    expect(m!.output()).toMatch(/listener 'http': cannot set up 127\.0\.0\.1:0: bindToDevice: setsockopt SO_BINDTODEVICE ENODEV: .*\(no network interface has that name\)/);
  });

  test('user and group: the socket file is owned by them, from the start', async () => {
    const sock = path.join(tmpdir(), 'owned.sock');
    try {
      start([{ name: 'u', unix: sock, mode: '0660', user: 'nobody', group: NOBODY }]);
      const s = await ready(m!);
      const st = fs.lstatSync(sock);
      expect([st.uid, st.gid, (st.mode & 0o777).toString(8)]).toEqual([NOBODY, NOBODY, '660']);
      expect(s.listeners[0].options![0]).toMatchObject({ mode: '0660', uid: NOBODY, gid: NOBODY });
      // a worker of another user in that group can connect
      const r = await report({ path: sock });
      expect(r.name).toBe('u');
    } finally {
      fs.rmSync(path.dirname(sock), { recursive: true, force: true });
    }
  });

  test('user: a symlink swapped in for the socket file before the chown is not followed; start-up fails', async () => {
    const shimDir = tmpdir();
    const shim = path.join(shimDir, 'open-swap-shim.so');
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', shim, path.join(FIXTURES, 'open-swap-shim.c'), '-ldl']);
    try {
      dir = tmpdir();
      const sock = path.join(dir, 'web.sock');
      const victim = path.join(dir, 'victim');
      const log = path.join(dir, 'shim.log');
      fs.writeFileSync(victim, 'root-only secret\n', { mode: 0o600 });
      const cfg = writeConfig(dir, { name: 'owned', listeners: [{ name: 'web', unix: sock, user: 'nobody' }], workers: { command: nodeWorker(), count: 1 } });
      m = startMaster(cfg, { env: { LD_PRELOAD: shim, SHIM_PATH: sock, SHIM_VICTIM: victim, SHIM_LOG: log } });
      await expect(ready(m)).rejects.toThrow(/master exited \(1\) before it was ready/);
      expect(fs.readFileSync(log, 'utf8')).toMatch(/swapped in a symlink/);
      expect(m.output()).toMatch(/listener 'web': cannot bind .*web\.sock: chown: the file is no longer the socket just bound/);
      expect(fs.statSync(victim).uid).toBe(0);
      // what was swapped in is not baton's: left where it is
      expect(fs.lstatSync(sock).isSymbolicLink()).toBe(true);
    } finally {
      fs.rmSync(shimDir, { recursive: true, force: true });
    }
  });
});

describe('sockets from systemd are used as the .socket unit made them', () => {
  test('no option is applied, not even the noDelay default', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'fromsystemd',
      listeners: [{ name: 'web', tcp: `127.0.0.1:${port}`, keepAlive: true }],
      workers: { command: WORKER, count: 1, readyTimeoutMs: 10000 },
    });
    m = startMaster(cfg, { wrapper: ['systemd-socket-activate', '-l', `127.0.0.1:${port}`, '--fdname=web'] });
    // systemd-socket-activate starts baton on the first connection, which the worker answers
    await m.waitForOutput(/Listening on 127.0.0.1:\d+ as 3/);
    const r = await report({ port });
    expect(r.listener).toMatchObject({ noDelay: false, keepAlive: false });
    expect((await m.status()).listeners[0]).toMatchObject({ source: 'systemd', options: [expect.objectContaining({ noDelay: false })] });
  });
});

describe('reload: live options change on the held socket; bind-time ones are refused', () => {
  test('noDelay, keepAlive*, deferAcceptSec, tcpCongestion change at the reload; a key removed goes back to the default', async () => {
    const { cfg } = start([{ name: 'http', tcp: '127.0.0.1:0', keepAliveTimeSec: 100 }]);
    const s0 = await ready(m!);
    const port = portOf(s0);
    const fds = s0.listeners[0].fds;
    const defaults = (await report({ port })).listener;
    expect(defaults).toMatchObject({ noDelay: true, keepAlive: false, keepAliveTimeSec: 100, deferAcceptSec: 0 });
    rewrite(cfg, (c) => (c.listeners[0] = { name: 'http', tcp: '127.0.0.1:0', noDelay: false, keepAlive: true, deferAcceptSec: 7, tcpCongestion: 'reno' }));
    const r = baton(['reload', '-c', cfg]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const s1 = await m!.status();
    // the same socket, same port
    expect([portOf(s1), s1.listeners[0].fds]).toEqual([port, fds]);
    const after = await report({ port });
    const sysctl = Number(fs.readFileSync('/proc/sys/net/ipv4/tcp_keepalive_time', 'utf8'));
    expect(after.listener).toMatchObject({ noDelay: false, keepAlive: true, keepAliveTimeSec: sysctl, deferAcceptSec: 7, tcpCongestion: 'reno' });
    expect(after.connection).toMatchObject({ noDelay: false, keepAlive: true });
    await m!.waitForOutput(/listener 'http': set \{.*"noDelay":false.*\}/);
  });

  test.each([
    ['freeBind', { freeBind: true }, /freeBind is true in the config but false on the socket held: this acts only when a socket is bound/],
    ['tcpCongestion that does not exist', { tcpCongestion: 'nosuchalgo' }, /tcpCongestion: setsockopt TCP_CONGESTION ENOENT/],
  ])('%s: the reload is refused naming the key, the old generation serves on, the socket is as it was', async (_what, change, error) => {
    const { cfg } = start([{ name: 'http', tcp: '127.0.0.1:0' }]);
    const s0 = await ready(m!);
    rewrite(cfg, (c) => Object.assign(c.listeners[0], change, { keepAlive: true }));
    const r = baton(['reload', '-c', cfg]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(error);
    const s1 = await m!.status();
    expect(s1.generation).toBe(s0.generation);
    expect(s1.listeners[0].options).toEqual(s0.listeners[0].options);
    expect((await report({ port: portOf(s0) })).listener).toMatchObject({ keepAlive: false, freeBind: false });
  });

  test('a unix socket file whose mode changes is refused; a buffer size removed stays, with a warning', async () => {
    const sock = path.join(tmpdir(), 'r.sock');
    try {
      const { cfg } = start([{ name: 'u', unix: sock, mode: '0660', receiveBuffer: 50000 }]);
      await ready(m!);
      rewrite(cfg, (c) => (c.listeners[0].mode = '0666'));
      const r = baton(['reload', '-c', cfg]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/listener 'u': mode is 0666 in the config but 0660 on the socket file/);
      rewrite(cfg, (c) => (c.listeners[0] = { name: 'u', unix: sock, mode: '0660' }));
      expect(baton(['reload', '-c', cfg]).code).toBe(0);
      await m!.waitForOutput(/listener 'u': receiveBuffer stays 100000 .* until the socket is bound anew/);
      expect((await report({ path: sock })).listener.receiveBuffer).toBe(100000);
    } finally {
      fs.rmSync(path.dirname(sock), { recursive: true, force: true });
    }
  });

  test('a reload that moves a listener to a new address binds it with the new bind-time options', async () => {
    const { cfg } = start([{ name: 'http', tcp: '127.0.0.1:0' }]);
    await ready(m!);
    rewrite(cfg, (c) => (c.listeners[0] = { name: 'http', tcp: '127.0.0.2:0', freeBind: true }));
    expect(baton(['reload', '-c', cfg]).code).toBe(0);
    const s = await m!.status();
    expect(s.listeners[0].addresses[0]).toMatch(/^127\.0\.0\.2:/);
    expect((await report({ port: portOf(s), host: '127.0.0.2' })).listener.freeBind).toBe(true);
  });
});

describe('baton check: options where they do not apply', () => {
  test('exit 78 with the key path', () => {
    dir = tmpdir();
    const f = writeConfig(dir, {
      workers: { command: ['sh'] },
      listeners: [
        { name: 'u', unix: 'u.sock', keepAlive: true },
        { name: 't', tcp: '127.0.0.1:80', user: 'root' },
      ],
    });
    const r = baton(['check', '-c', f]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('/listeners/0/keepAlive: only applies to a tcp listener');
    expect(r.stderr).toContain("/listeners/1/user: only applies to a unix listener (the socket file's owner)");
  });
});

describe('baton check: options the kernel refuses', () => {
  test('an unavailable tcpCongestion and a missing bindToDevice interface: exit 78 with the key path', () => {
    dir = tmpdir();
    const f = writeConfig(dir, {
      workers: { command: ['sh'] },
      listeners: [
        { name: 'a', tcp: '127.0.0.1:0', tcpCongestion: 'no-such-algo' },
        { name: 'b', tcp: '[::1]:0', bindToDevice: 'nosuchif0', tcpCongestion: 'reno' },
      ],
    });
    const r = baton(['check', '-c', f]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/\/listeners\/0\/tcpCongestion: setsockopt TCP_CONGESTION ENOENT: .*\(not an available algorithm/);
    expect(r.stderr).toMatch(/\/listeners\/1\/bindToDevice: setsockopt SO_BINDTODEVICE ENODEV: .*\(no network interface has that name\)/);
    // only the refused keys are named
    expect(r.stderr).not.toContain('/listeners/1/tcpCongestion');
  });
});
