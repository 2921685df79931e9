// Issue 9 item 8: every exit path removes what that process made, a rolled-back upgrade
// leaves nothing of the successor's, and the successor's own reason reaches `baton upgrade`.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  batonAsync,
  childrenOf,
  cleanupAll,
  FIXTURES,
  forAnyone,
  killTree,
  NOBODY,
  nodeWorker,
  rootOnly,
  sleep,
  startMaster,
  tmpdir,
  waitFor,
  writeConfig,
  type Master,
} from '../helpers/proc';
import { startService, stopService, type Service } from '../helpers/service';


describe('a start-up that fails leaves nothing behind', () => {
  let m: Master | undefined;
  let dir: string | undefined;
  afterEach(() => cleanupAll(m, dir));

  test('an unwritable pidfile: exit 1 naming it; no control socket, unix listener file or temporary file', async () => {
    dir = tmpdir();
    fs.mkdirSync(path.join(dir, 'piddir')); // a folder where the pidfile should be: rename() fails
    const cfg = writeConfig(dir, {
      name: 'fail',
      pidfile: 'piddir',
      listeners: [{ name: 'local', unix: 'sock/api.sock' }],
      workers: { command: nodeWorker() },
    });
    m = startMaster(cfg);
    const exit = await m.exited;
    expect(exit.code).toBe(1);
    expect(fs.readdirSync(path.join(dir, 'run'))).toEqual([]);
    expect(fs.readdirSync(path.join(dir, 'sock'))).toEqual([]);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(m.output()).toMatch(new RegExp(`cannot start: cannot write the pidfile ${path.join(dir, 'piddir')}`));
  });
});

rootOnly('a read-only runtime folder at stop', () => {
  let proc: ChildProcess | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await killTree(proc);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the files it cannot remove are named, and it still says "stopped" and exits 0 (as a second user: root ignores modes)', async () => {
    dir = tmpdir();
    fs.chmodSync(dir, 0o755);
    const runtimeDir = path.join(dir, 'run');
    fs.mkdirSync(runtimeDir, { mode: 0o700 });
    fs.chownSync(runtimeDir, NOBODY, NOBODY);
    const cfg = writeConfig(dir, { name: 'ro', runtimeDir, workers: { command: ['/bin/sleep', '600'], ready: 'spawn', stopTimeoutMs: 5000 } });
    const anyone = forAnyone();
    proc = spawn(anyone.node, [anyone.baton, 'run', '-c', cfg], { uid: NOBODY, gid: NOBODY, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout!.on('data', (d) => (out += d));
    proc.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => proc!.once('exit', (code) => r(code)));
    await waitFor('the generation', () => /generation 1 ready/.test(out));
    fs.chmodSync(runtimeDir, 0o500);
    proc.kill('SIGTERM');
    await waitFor('the end of the stop', () => /stopped|internal error/.test(out));
    expect(out).not.toMatch(/internal error/);
    expect(out).toMatch(new RegExp(`cannot remove the control socket ${path.join(runtimeDir, 'control.sock')}: .*EACCES`));
    expect(out).toMatch(new RegExp(`cannot remove the pidfile ${path.join(runtimeDir, 'baton.pid')}: .*EACCES`));
    expect(out).toMatch(/\bstopped\b/);
    expect(await exited).toBe(0);
  });
});

describe('a failed upgrade leaves nothing of the successor and says why', () => {
  let current: Service | undefined;
  let busy: net.Server | undefined;
  afterEach(async () => {
    busy?.close();
    busy = undefined;
    await stopService(current);
    current = undefined;
  });

  /** A master under a subreaper (standing in for systemd), and a way to change its config on disk. */
  async function service(env: NodeJS.ProcessEnv = {}, command = nodeWorker()): Promise<Service> {
    current = await startService(
      {
        name: 'up',
        listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
        workers: { command, count: 1, readyTimeoutMs: 20000, stopTimeoutMs: 5000 },
      },
      { env },
    );
    return current;
  }

  const leftInRunDir = (runDir: string) => fs.readdirSync(runDir).sort();

  test("the successor cannot bind (EADDRINUSE): baton upgrade and the log say so; its socket files are gone", async () => {
    const svc = await service();
    busy = net.createServer();
    await new Promise<void>((r) => busy!.listen(0, '127.0.0.1', r));
    const port = (busy.address() as net.AddressInfo).port;
    svc.rewrite((c) => {
      c.listeners.push({ name: 'new', unix: 'sock/new.sock' }, { name: 'busy', tcp: `127.0.0.1:${port}` });
    });
    const r = await batonAsync(['upgrade', '-c', svc.cfg]);
    expect(r.stderr).toMatch(new RegExp(`upgrade failed: the successor \\(pid \\d+\\) failed: cannot start: listener 'busy': cannot bind 127.0.0.1:${port}: .*EADDRINUSE`));
    expect(r.code).toBe(1);
    expect(svc.m.output()).toMatch(/upgrade failed and rolled back, generation 1 keeps serving: the successor \(pid \d+\) failed: .*EADDRINUSE/);
    await waitFor('the successor to be gone', () => !/control\.sock\./.test(leftInRunDir(svc.runDir).join(' ')));
    expect(leftInRunDir(svc.runDir)).toEqual(['baton.pid', 'control.sock']);
    expect(fs.readdirSync(path.join(svc.dir, 'sock'))).toEqual([]);
    expect(svc.master()).toBe(svc.first.pid);
  });

  test('the successor cannot write its pidfile: the reason reaches baton upgrade; no temporary file is left', async () => {
    const svc = await service();
    fs.mkdirSync(path.join(svc.dir, 'piddir'));
    svc.rewrite((c) => {
      c.pidfile = 'piddir';
    });
    const r = await batonAsync(['upgrade', '-c', svc.cfg]);
    expect(r.stderr).toMatch(new RegExp(`upgrade failed: the successor \\(pid \\d+\\) failed: cannot write the pidfile ${path.join(svc.dir, 'piddir')}`));
    expect(r.code).toBe(1);
    await waitFor('the successor to be gone', () => !/control\.sock\./.test(leftInRunDir(svc.runDir).join(' ')));
    expect(leftInRunDir(svc.runDir)).toEqual(['baton.pid', 'control.sock']);
    expect(fs.readdirSync(svc.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test("a successor SIGKILLed inside spawn(), before it could tell its predecessor of its worker: that worker's program never runs", async () => {
    const d = tmpdir();
    const shim = path.join(d, 'fork-kill-shim.so');
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', shim, path.join(FIXTURES, 'fork-kill-shim.c'), '-ldl']);
    const marks = path.join(d, 'ran');
    fs.mkdirSync(marks);
    // the predecessor's environment reaches its successor: the shim, armed there, kills it
    // right after the fork of its first worker; each worker program that runs leaves a mark
    const once = path.join(d, 'once');
    const svc = await service({ LD_PRELOAD: shim, SHIM_ONCE: once, MARKS: marks }, ['sh', '-c', 'echo $$ > "$MARKS/$BATON_GENERATION.$$"; exec "$@"', 'sh', ...nodeWorker()]);
    const r = await batonAsync(['upgrade', '-c', svc.cfg]);
    expect(r.code).toBe(1);
    expect(fs.existsSync(once)).toBe(true);
    await sleep(1000);
    const ran = fs.readdirSync(marks);
    expect(ran.filter((f) => !f.startsWith('1.'))).toEqual([]);
    const st = await svc.m.status();
    expect(st.generations.map((g) => g.id)).toEqual([1]);
  });

  test('a successor SIGKILLed before it is ready: the predecessor removes its control.sock.<pid>', async () => {
    const svc = await service();
    svc.rewrite((c) => {
      c.workers.env = { WORKER_READY_DELAY_MS: '60000' };
    });
    const pending = batonAsync(['upgrade', '-c', svc.cfg]);
    const succ = await waitFor('the successor control socket', () => {
      const f = leftInRunDir(svc.runDir).find((x) => /^control\.sock\.\d+$/.test(x));
      return f ? Number(f.split('.').pop()) : undefined;
    });
    // killed once its worker runs and has been reported to the predecessor (sent as soon as
    // spawn() returns); a SIGKILL inside spawn() itself is the start gate's test above
    await waitFor("the successor's worker", () => childrenOf(succ).length > 0);
    await sleep(200);
    process.kill(succ, 'SIGKILL');
    const r = await pending;
    expect(r.stderr).toMatch(new RegExp(`upgrade failed: the successor \\(pid ${succ}\\) exited before it was ready`));
    expect(r.code).toBe(1);
    await waitFor(`control.sock.${succ} to be removed`, () => !leftInRunDir(svc.runDir).includes(`control.sock.${succ}`));
    expect(leftInRunDir(svc.runDir)).toEqual(['baton.pid', 'control.sock']);
    // logged once the removals are done, just after the file is gone
    await svc.m.waitForOutput(new RegExp(`removed what the successor \\(pid ${succ}\\) left behind: ${path.join(svc.runDir, `control.sock.${succ}`)}`));
  });
});
