'use strict';
// The peers, each started on the same app/hello.js: bare, baton, Node cluster and PM2.
// Everything on the server side is pinned to SERVER_CPU (taskset; children inherit it), the
// load generator to the other core (wrk.js).
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFile } = require('node:child_process');
const { performance } = require('node:perf_hooks');
const { native } = require('./notify-hub');
const { waitFor, alive, serving, descendantsOf } = require('./sys');

const SERVER_CPU = process.env.BENCH_SERVER_CPU || '0';
const ROOT = path.join(__dirname, '../..');
const BATON = path.join(ROOT, 'bin/baton');
const HELLO = path.join(__dirname, '../app/hello.js');
const UNMODIFIED = path.join(__dirname, '../app/unmodified.js');
const UNMODIFIED_FD3 = path.join(__dirname, '../app/unmodified-fd3.js');
const CLUSTER = path.join(__dirname, '../app/cluster.js');
const PM2 = path.join(__dirname, '../node_modules/.bin/pm2');
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-bench-'));
const BACKLOG = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));

// What systemd gives a service: PATH (and the locale), not the shell's environment. A login
// shell's NODE_EXTRA_CA_CERTS alone costs every Node process ~45 ms and ~2 MB here (Node reads
// the whole bundle at start-up), which would be measured as baton's, PM2's and the workers'.
const SERVICE_ENV = { PATH: process.env.PATH, ...(process.env.LANG ? { LANG: process.env.LANG } : {}) };

let serial = 0;
const logFile = (name) => fs.openSync(path.join(WORK, `${name}.log`), 'a');

/** `cpus`: where the servers may run (SERVER_CPU by default; "0,1" leaves them free on both cores). */
function pinned(cmd, args, opts = {}, cpus = SERVER_CPU) {
  return spawn('taskset', ['-c', cpus, cmd, ...args], { stdio: ['ignore', 'ignore', 'ignore'], ...opts });
}

function run(cmd, args, env) {
  return new Promise((resolve, reject) =>
    execFile('taskset', ['-c', SERVER_CPU, cmd, ...args], { env: { ...SERVICE_ENV, ...env }, timeout: 120000 }, (e, out, err) =>
      e ? reject(new Error(`${cmd} ${args.join(' ')}: ${e.message}\n${err}`)) : resolve(out),
    ),
  );
}

async function gone(pid, what, timeoutMs = 60000) {
  await waitFor(`${what} (pid ${pid}) to exit`, () => !alive(pid), timeoutMs);
}

const ms = (t0) => performance.now() - t0;

/**
 * The same workers sharing listening sockets with no manager: this process binds them (and
 * never accepts). Their READY=1 comes to the harness's NOTIFY_SOCKET, so start() is also the
 * workers' own boot time, the floor for a reload.
 */
class Bare {
  /** `script`: the workers' (app/hello.js by default); `cpus`: see pinned(). */
  constructor({ port, workers = 2, listeners = 1, hub, script = HELLO, cpus = SERVER_CPU }) {
    Object.assign(this, { name: 'bare', port, workers, listeners, hub, script, cpus });
  }
  /** Resolves to ms from spawning the workers to the last one's READY=1. */
  async start() {
    this.fds = [];
    for (let i = 0; i < this.listeners; i++) this.fds.push(native.listenSocket(4, '127.0.0.1', this.port + i, BACKLOG, 0));
    const env = { ...SERVICE_ENV, LISTEN_FDS: String(this.fds.length), LISTEN_FDNAMES: this.fds.map(() => 'http').join(':'), NOTIFY_SOCKET: this.hub.address };
    const mark = this.hub.mark;
    const t0 = performance.now();
    this.children = [];
    for (let i = 0; i < this.workers; i++) {
      this.children.push(pinned('sh', ['-c', 'LISTEN_PID=$$ exec node "$0"', this.script], { env, stdio: ['ignore', 'ignore', logFile('bare'), ...this.fds] }, this.cpus));
    }
    const last = await this.hub.allReady('READY=1 from the bare workers', mark, new Set(this.children.map((c) => c.pid)));
    return last.at - t0;
  }
  managerPid() {
    return undefined;
  }
  async stop() {
    for (const c of this.children) c.kill('SIGTERM');
    for (const c of this.children) await gone(c.pid, 'bare worker');
    for (const fd of this.fds) fs.closeSync(fd);
  }
}

/** baton run, under the harness's NOTIFY_SOCKET; ready, reloaded and upgraded are its own READY=1 and MAINPID=. */
class Baton {
  /**
   * `command`: the workers' (default: node app/hello.js); `options`: added to every listener
   * (noDelay ...); `more`: more workers keys; `cpus`: see pinned(); `nodeArgs`: run bin/baton
   * as `node ...nodeArgs bin/baton` (without: as bin/baton, its own shebang's flags); `top`: more
   * top-level keys (reload: {...}).
   */
  constructor({ port, workers = 2, listeners = 1, hub, command = ['node', HELLO], options = {}, more = {}, cpus = SERVER_CPU, nodeArgs, top = {} }) {
    Object.assign(this, { name: 'baton', port, workers, listeners, hub, cpus, nodeArgs });
    this.id = `bench${++serial}`;
    this.dir = path.join(WORK, this.id);
    fs.mkdirSync(this.dir);
    this.config = path.join(this.dir, 'baton.json');
    fs.writeFileSync(
      this.config,
      JSON.stringify({
        name: this.id,
        runtimeDir: path.join(this.dir, 'run'),
        listeners: Array.from({ length: listeners }, (_, i) => ({ name: `http${i}`, tcp: `127.0.0.1:${port + i}`, ...options })),
        workers: { command, count: workers, ready: 'notify', readyTimeoutMs: 60000, stopTimeoutMs: 10000, ...more },
        upgrade: { timeoutMs: 60000 },
        log: { level: 'warn' },
        ...top,
      }),
    );
  }
  /** Resolves to ms from spawn to the master's READY=1. */
  async start() {
    const mark = this.hub.mark;
    const t0 = performance.now();
    const [cmd, ...args] = [...(this.nodeArgs ? ['node', ...this.nodeArgs] : []), BATON, 'run', '-c', this.config];
    const child = pinned(
      cmd,
      args,
      {
        env: { ...SERVICE_ENV, NOTIFY_SOCKET: this.hub.address },
        stdio: ['ignore', 'ignore', logFile(this.id)],
      },
      this.cpus,
    );
    this.pid = child.pid;
    const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve(`baton run exited (${sig || code}) before READY=1`)));
    const ready = this.hub.next('READY=1 from baton', mark, (m) => m.pid === child.pid && m.fields.get('READY') === '1');
    const r = await Promise.race([ready, exited]);
    if (typeof r === 'string') throw new Error(`${r}; see ${path.join(WORK, this.id + '.log')}`);
    return r.at - t0;
  }
  managerPid() {
    return this.pid;
  }
  /** HUP; resolves to ms until the master's READY=1 (the new generation serving, the old one told to stop). */
  async reload() {
    const mark = this.hub.mark;
    const t0 = performance.now();
    process.kill(this.pid, 'SIGHUP');
    const r = await this.hub.next('READY=1 after HUP', mark, (m) => m.pid === this.pid && m.fields.get('READY') === '1');
    return r.at - t0;
  }
  /**
   * A binary upgrade asked for `via` SIGUSR2 ('signal'), the control socket's upgrade command
   * ('control', what `baton upgrade` sends) or `bin/baton upgrade -c <config>` itself ('cli',
   * pinned like the servers); follows the new master's pid. Resolves to { readyMs: MAINPID=
   * sent (successor ready), goneMs: old master exited, cliMs: the CLI's spawn to its exit 0 }.
   */
  async upgrade(via = 'signal') {
    const mark = this.hub.mark;
    const old = this.pid;
    const t0 = performance.now();
    let cliMs;
    if (via === 'cli') {
      await run(BATON, ['upgrade', '-c', this.config]);
      cliMs = ms(t0);
    } else if (via === 'control') {
      const c = net.connect(path.join(this.dir, 'run', 'control.sock'), () => c.end('{"cmd":"upgrade"}\n'));
      c.on('error', () => undefined);
      c.resume();
    } else process.kill(old, 'SIGUSR2');
    const r = await this.hub.next(`MAINPID= after the upgrade (${via})`, mark, (m) => m.fields.has('MAINPID'));
    this.pid = Number(r.fields.get('MAINPID'));
    await waitFor(`old master ${old} to exit`, () => !alive(old), 60000, 2);
    return { readyMs: r.at - t0, goneMs: ms(t0), cliMs };
  }
  async stop() {
    process.kill(this.pid, 'SIGTERM');
    await gone(this.pid, 'baton master');
  }
}

/** Node cluster (round-robin: the primary accepts every connection and hands it to a worker). */
class Cluster {
  constructor({ port, workers = 2 }) {
    Object.assign(this, { name: 'cluster', port, workers });
  }
  async start() {
    const t0 = performance.now();
    const child = pinned('node', [CLUSTER], { env: { ...SERVICE_ENV, PORT: String(this.port), COUNT: String(this.workers) }, stdio: ['ignore', 'ignore', logFile('cluster')] });
    this.pid = child.pid;
    await serving(this.port);
    await waitFor('cluster workers', () => descendantsOf(this.pid).length >= this.workers);
    return ms(t0);
  }
  managerPid() {
    return this.pid;
  }
  async stop() {
    process.kill(this.pid, 'SIGTERM');
    await gone(this.pid, 'cluster primary');
  }
}

/** "Naive restart": the cluster service stopped, then started again, as `systemctl restart` would. */
class Naive extends Cluster {
  constructor(o) {
    super(o);
    this.name = 'naive';
  }
  async reload() {
    const t0 = performance.now();
    await this.stop();
    await this.start();
    return ms(t0);
  }
}

/** PM2 cluster mode, with its own PM2_HOME; the daemon is the cluster primary. `script`: app/hello.js by default. */
class Pm2 {
  constructor({ port, workers = 2, script = HELLO }) {
    Object.assign(this, { name: 'pm2', port, workers });
    this.home = path.join(WORK, `pm2-${++serial}`);
    fs.mkdirSync(this.home);
    this.env = { PM2_HOME: this.home };
    this.ecosystem = path.join(this.home, 'ecosystem.json');
    fs.writeFileSync(
      this.ecosystem,
      JSON.stringify({
        apps: [
          {
            name: 'hello',
            script,
            instances: workers,
            exec_mode: 'cluster',
            env: { PORT: String(port) },
            // the same stop deadline as baton's stopTimeoutMs (PM2's default is 1.6 s)
            kill_timeout: 10000,
            out_file: '/dev/null',
            error_file: path.join(this.home, 'hello.err'),
          },
        ],
      }),
    );
  }
  async start() {
    const t0 = performance.now();
    await run(PM2, ['start', this.ecosystem], this.env);
    await serving(this.port);
    return ms(t0);
  }
  managerPid() {
    return Number(fs.readFileSync(path.join(this.home, 'pm2.pid'), 'utf8'));
  }
  async reload() {
    const t0 = performance.now();
    await run(PM2, ['reload', 'hello'], this.env);
    return ms(t0);
  }
  async stop() {
    const pid = this.managerPid();
    await run(PM2, ['kill'], this.env);
    await gone(pid, 'PM2 daemon');
  }
}

module.exports = { Bare, Baton, Cluster, Naive, Pm2, WORK, SERVER_CPU, UNMODIFIED, UNMODIFIED_FD3 };
