// Issue 9 item 2: a runtime folder another user made is not trusted, by the master nor by
// the client commands. The hostile user is `nobody`: these tests need root to act as it. And
// one master per runtime folder: a second is refused while the first answers on control.sock.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { controlSocketPath } from '../../src/contract/control';
import {
  baton,
  childrenOf,
  cleanup,
  forAnyone,
  get,
  IS_ROOT,
  isAlive,
  killTree,
  NOBODY,
  nodeWorker,
  portOf,
  ready,
  rootOnly,
  sleep,
  startMaster,
  tmpdir,
  waitFor,
  workerPids,
  writeConfig,
  type Master,
} from '../helpers/proc';

if (!IS_ROOT) console.warn('runtime-dir.test.ts: SKIPPED: acting as a second user (nobody) needs root');

/** Runs a node snippet as nobody (the hostile local user). */
function asNobody(code: string, ...args: string[]): string {
  const r = spawnSync(forAnyone().node, ['-e', code, ...args], { uid: NOBODY, gid: NOBODY, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`as nobody: ${r.stderr}`);
  return r.stdout;
}

/** A `sleep` nobody cares about: the process a swapped pidfile would have baton stop. */
function bystander(opts: { uid?: number } = {}): ChildProcess {
  return spawn('sleep', ['600'], { stdio: 'ignore', ...(opts.uid ? { uid: opts.uid, gid: opts.uid } : {}) });
}

/** The master's exit, or 'started' once it serves (it should have refused). */
const refusedOrStarted = (m: Master) =>
  Promise.race([m.exited, m.waitForOutput(/generation \d+ ready/).then(() => ({ code: 'started' as const }))]);

const SPAWN_WORKER = { command: ['/bin/sleep', '600'], ready: 'spawn', stopTimeoutMs: 5000 };

rootOnly('the master refuses a runtime folder it cannot trust', () => {
  let dir: string;
  let m: Master | undefined;
  beforeEach(() => {
    dir = tmpdir();
    fs.chmodSync(dir, 0o755); // nobody must reach the shared folder below
  });
  afterEach(async () => {
    await cleanup(m);
    m = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("one another user made first in a shared folder, symlinks planted: exit 1, path named, nothing written through them", async () => {
    // what /tmp/baton-<uid>/<name> was: a shared sticky folder, the subfolder taken by nobody
    const shared = path.join(dir, 'shared');
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o1777);
    const victim = path.join(dir, 'victim');
    fs.writeFileSync(victim, 'secret\n', { mode: 0o600 });
    const runtimeDir = path.join(shared, 'baton-0', 'demo');
    const next = Number(fs.readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
    asNobody(
      `const fs = require('fs'), path = require('path'); const [dir, victim, from] = process.argv.slice(1);
       fs.mkdirSync(dir, { recursive: true, mode: 0o777 }); fs.chmodSync(dir, 0o777);
       // the pidfile's temporary name is predictable: baton.pid.<pid>.tmp
       for (let p = Number(from); p < Number(from) + 400; p++) fs.symlinkSync(victim, path.join(dir, 'baton.pid.' + p + '.tmp'));
       fs.symlinkSync(victim, path.join(dir, 'baton.pid'));`,
      runtimeDir,
      victim,
      String(next + 1),
    );
    const cfg = writeConfig(dir, { name: 'demo', runtimeDir, workers: SPAWN_WORKER });
    m = startMaster(cfg);
    const exit = await refusedOrStarted(m);
    expect(m.output()).toContain(`refusing the runtime folder ${runtimeDir}`);
    expect(m.output()).toMatch(/owned by uid 65534/);
    expect(exit.code).toBe(1);
    expect(fs.readFileSync(victim, 'utf8')).toBe('secret\n');
    expect(fs.existsSync(path.join(runtimeDir, 'control.sock'))).toBe(false);
  });

  test.each([
    ['writable by others', (d: string) => (fs.mkdirSync(d, { recursive: true }), fs.chmodSync(d, 0o777)), /writable by group or others \(mode 0777\)/],
    ['a symlink', (d: string) => (fs.mkdirSync(`${d}-real`, { recursive: true }), fs.symlinkSync(`${d}-real`, d)), /is a symlink/],
    ['below a folder another user owns', (d: string) => (fs.mkdirSync(path.dirname(d)), fs.chownSync(path.dirname(d), NOBODY, NOBODY)), /owned by uid 65534/],
  ])('one %s: exit 1 naming the path', async (_what, make, why) => {
    const runtimeDir = path.join(dir, 'x', 'run');
    make(runtimeDir);
    const cfg = writeConfig(dir, { name: 'demo', runtimeDir, workers: SPAWN_WORKER });
    m = startMaster(cfg);
    const exit = await refusedOrStarted(m);
    expect(m.output()).toContain(`refusing the runtime folder ${runtimeDir}`);
    expect(m.output()).toMatch(why);
    expect(exit.code).toBe(1);
  });

  test('a missing runtime folder is created 0700 (the folders on the way 0755), whatever the umask', async () => {
    const runtimeDir = path.join(dir, 'a', 'b', 'run');
    const cfg = writeConfig(dir, { name: 'demo', runtimeDir, workers: SPAWN_WORKER });
    m = startMaster(cfg, { wrapper: ['sh', '-c', 'umask 077; exec "$@"', 'sh'] });
    await ready(m);
    expect(fs.statSync(runtimeDir).mode & 0o7777).toBe(0o700);
    expect(fs.statSync(path.join(dir, 'a')).mode & 0o7777).toBe(0o755);
    expect(fs.statSync(path.join(dir, 'a', 'b')).mode & 0o7777).toBe(0o755);
  });
});

rootOnly('the non-root default runtime folder', () => {
  let dir: string;
  let proc: ChildProcess | undefined;
  afterEach(async () => {
    await killTree(proc);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(`/tmp/baton-${NOBODY}`, { recursive: true, force: true });
  });

  test('without XDG_RUNTIME_DIR it is private, in the home folder, never in /tmp', async () => {
    dir = tmpdir();
    fs.chmodSync(dir, 0o755);
    const home = path.join(dir, 'home');
    fs.mkdirSync(home, { mode: 0o700 });
    fs.chownSync(home, NOBODY, NOBODY);
    const cfg = path.join(dir, 'demo.json');
    fs.writeFileSync(cfg, JSON.stringify({ workers: SPAWN_WORKER }));
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
    delete env.XDG_RUNTIME_DIR;
    delete env.RUNTIME_DIRECTORY;
    const anyone = forAnyone();
    proc = spawn(anyone.node, [anyone.baton, 'run', '-c', cfg], { env, uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    const exited = new Promise((r) => proc!.once('exit', r));
    await Promise.race([
      waitFor('the generation', () => /generation 1 ready/.test(out)),
      exited.then(() => {
        throw new Error(`the master exited:\n${out}`);
      }),
    ]);
    const runtimeDir = path.join(home, '.baton', 'demo');
    expect(fs.statSync(runtimeDir).mode & 0o7777).toBe(0o700);
    expect(fs.statSync(runtimeDir).uid).toBe(NOBODY);
    expect(fs.existsSync(path.join(runtimeDir, 'control.sock'))).toBe(true);
    expect(fs.existsSync(`/tmp/baton-${NOBODY}`)).toBe(false);
    // forAnyone()'s copy is whole: the master found the signal guard beside its bundle, and its worker loaded it
    const guard = path.join(path.dirname(path.dirname(anyone.baton)), 'dist', 'native', 'baton_signal_guard.node');
    expect(childrenOf(proc.pid!).map((w) => fs.readFileSync(`/proc/${w}/maps`, 'utf8').includes(guard))).toEqual([true]);
    const asUser = (args: string[]) => {
      const r = spawnSync(anyone.node, [anyone.baton, ...args], { env, uid: NOBODY, gid: NOBODY, encoding: 'utf8' });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    expect(asUser(['status', '-c', cfg]).stdout).toMatch(new RegExp(`master pid ${proc.pid}`));
    const stop = asUser(['stop', '-c', cfg]);
    expect(stop.stdout).toMatch(new RegExp(`stopped: master pid ${proc.pid}`));
    expect(stop.code).toBe(0);
    await exited;
  });
});

rootOnly("systemd's RuntimeDirectory= (0755, the service user's, in root's /run/baton)", () => {
  let dir: string;
  let proc: ChildProcess | undefined;
  afterEach(async () => {
    await killTree(proc);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the master (as that user) uses it, and root\'s client commands reach and stop it', async () => {
    dir = tmpdir();
    fs.chmodSync(dir, 0o755);
    // what systemd makes for RuntimeDirectory=baton/%i with DynamicUser=yes
    const runtimeDir = path.join(dir, 'run', 'baton', 'demo');
    fs.mkdirSync(runtimeDir, { recursive: true, mode: 0o755 });
    fs.chownSync(runtimeDir, NOBODY, NOBODY);
    const cfg = path.join(dir, 'demo.json');
    fs.writeFileSync(cfg, JSON.stringify({ workers: SPAWN_WORKER }));
    const env = { RUNTIME_DIRECTORY: runtimeDir };
    const anyone = forAnyone();
    proc = spawn(anyone.node, [anyone.baton, 'run', '-c', cfg], { env: { ...process.env, ...env }, uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    const exited = new Promise((r) => proc!.once('exit', r));
    await waitFor('the generation', () => /generation 1 ready/.test(out) || /cannot start/.test(out));
    expect(out).toMatch(/generation 1 ready/);
    expect(fs.statSync(runtimeDir).mode & 0o7777).toBe(0o755);
    expect(baton(['status', '-c', cfg], env).stdout).toMatch(new RegExp(`master pid ${proc.pid}`));
    const stop = baton(['stop', '-c', cfg], env);
    expect(stop.stdout).toMatch(new RegExp(`stopped: master pid ${proc.pid}`));
    await exited;
  });
});

rootOnly('client commands trust a pid only once it is provably the master', () => {
  let dir: string;
  let victim: ChildProcess | undefined;
  let fake: ChildProcess | undefined;
  let m: Master | undefined;
  beforeEach(() => {
    dir = tmpdir();
    fs.chmodSync(dir, 0o755);
  });
  afterEach(async () => {
    await cleanup(m);
    m = undefined;
    for (const p of [victim, fake]) {
      if (p && p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
        await new Promise((r) => p.once('exit', r));
      }
    }
    victim = fake = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const config = (runtimeDir: string) => writeConfig(dir, { name: 'demo', runtimeDir, workers: SPAWN_WORKER });

  test('a pidfile in a folder another user made in a shared folder: stop refuses, the process lives', async () => {
    const shared = path.join(dir, 'shared');
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o1777);
    victim = bystander();
    const runtimeDir = path.join(shared, 'demo');
    asNobody(
      `const fs = require('fs'); const [d, pid] = process.argv.slice(1); fs.mkdirSync(d, { mode: 0o755 }); fs.writeFileSync(d + '/baton.pid', pid + '\\n');`,
      runtimeDir,
      String(victim.pid),
    );
    const r = baton(['stop', '-c', config(runtimeDir)]);
    expect(r.stderr).toContain(`not trusting the runtime folder ${runtimeDir}`);
    expect(r.stderr).toMatch(/owned by uid 65534 in a folder anyone can write to/);
    expect(r.code).toBe(1);
    expect(r.stdout).not.toMatch(/stopped/);
    expect(isAlive(victim.pid!)).toBe(true);
  });

  test('a pidfile naming a process that started after it was written (a recycled pid): refused', async () => {
    const runtimeDir = path.join(dir, 'run');
    fs.mkdirSync(runtimeDir, { mode: 0o700 });
    victim = bystander();
    const pidfile = path.join(runtimeDir, 'baton.pid');
    fs.writeFileSync(pidfile, `${victim.pid}\n`);
    const hourAgo = new Date(Date.now() - 3600_000);
    fs.utimesSync(pidfile, hourAgo, hourAgo);
    const r = baton(['stop', '-c', config(runtimeDir)]);
    expect(r.stderr).toContain(`not trusting pid ${victim.pid} from ${pidfile}`);
    expect(r.stderr).toMatch(/started after the pidfile was written/);
    expect(r.code).toBe(1);
    expect(isAlive(victim.pid!)).toBe(true);
  });

  test("a pidfile naming another user's process: refused", async () => {
    const runtimeDir = path.join(dir, 'run');
    fs.mkdirSync(runtimeDir, { mode: 0o700 });
    victim = bystander({ uid: NOBODY });
    await sleep(50);
    fs.writeFileSync(path.join(runtimeDir, 'baton.pid'), `${victim.pid}\n`);
    const r = baton(['reload', '-c', config(runtimeDir)]);
    expect(r.stderr).toMatch(new RegExp(`not trusting pid ${victim.pid} .*runs as uid 65534`));
    expect(r.code).toBe(1);
    expect(isAlive(victim.pid!)).toBe(true);
  });

  test("a control socket another user listens on: refused, whatever it answers", async () => {
    const runtimeDir = path.join(dir, 'run');
    fs.mkdirSync(runtimeDir, { mode: 0o700 });
    victim = bystander();
    // nobody listens in a folder of its own; root moves the file into place (only root or
    // the folder's owner could put it there: this is what the peer check stands behind)
    const own = path.join(dir, 'nobody');
    fs.mkdirSync(own);
    fs.chownSync(own, NOBODY, NOBODY);
    fake = spawn(
      forAnyone().node,
      [
        '-e',
        `require('net').createServer((c) => c.once('data', () => c.end(JSON.stringify({ ok: true, pid: ${victim.pid}, name: 'demo', version: 'x', phase: 'running', uptimeMs: 0, config: '', statusLine: '', listeners: [], generations: [], lastReload: null }) + '\\n'))).listen(process.argv[1], () => console.log('up'));`,
        path.join(own, 'control.sock'),
      ],
      { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise((r) => fake!.stdout!.once('data', r));
    fs.renameSync(path.join(own, 'control.sock'), path.join(runtimeDir, 'control.sock'));
    const r = baton(['status', '-c', config(runtimeDir)]);
    expect(r.stderr).toMatch(new RegExp(`control socket .*control.sock is held by pid ${fake.pid} of uid 65534`));
    expect(r.code).toBe(1);
  });

  test('a real master whose control socket is gone is still found through its pidfile and stopped', async () => {
    const cfg = config(path.join(dir, 'run'));
    m = startMaster(cfg);
    await ready(m);
    fs.rmSync(path.join(dir, 'run', 'control.sock'));
    const r = baton(['stop', '-c', cfg]);
    expect(r.stdout).toMatch(new RegExp(`stopped: master pid ${m.pid}`));
    expect(r.code).toBe(0);
    expect((await m.exited).code).toBe(0);
  });
});

describe('one master per runtime folder', () => {
  let first: Master | undefined;
  let second: Master | undefined;
  afterEach(async () => {
    await cleanup(second);
    await cleanup(first);
    first = second = undefined;
  });

  test('a second master for the same config is refused while the first answers on control.sock: exit 1, no worker started; the first serves on, its files untouched', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, { name: 'twice', runtimeDir: 'run', listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: nodeWorker(), count: 1 } });
    first = startMaster(cfg);
    const s = await ready(first);
    const sock = controlSocketPath(path.join(dir, 'run'));
    const pidfile = path.join(dir, 'run', 'baton.pid');
    const before = { control: fs.statSync(sock).ino, pidfile: fs.readFileSync(pidfile, 'utf8') };
    second = startMaster(cfg);
    expect(await refusedOrStarted(second)).toEqual({ code: 1, signal: null });
    expect(second.output()).toContain(`another baton master is running for this config (its control socket ${sock} answers)`);
    expect(second.output()).not.toMatch(/worker \d+ \(pid/);
    expect({ control: fs.statSync(sock).ino, pidfile: fs.readFileSync(pidfile, 'utf8') }).toEqual(before);
    const after = await first.status();
    expect({ pid: after.pid, workers: workerPids(after) }).toEqual({ pid: first.pid, workers: workerPids(s) });
    expect((await get(portOf(s))).status).toBe(200);
  });
});
