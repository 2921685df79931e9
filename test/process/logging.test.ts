// A failing log sink (a pipe closed by its reader, a reader that stalls, a full disk, a broken
// journal stream) costs dropped lines, counted in `status`, and nothing else: the master
// serves, reloads, does not spin, and stops on SIGTERM.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { request } from '../../src/control/client';
import { controlSocketPath, type StatusReply } from '../../src/contract/control';
import { readProcStat } from '../../src/system/proc-stat';
import { BATON, childrenOf, get, IS_ROOT, isAlive, nodeWorker, sleep, tmpdir, waitFor, writeConfig } from '../helpers/proc';

interface Run {
  proc: ChildProcess;
  pid: number;
  runtimeDir: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** What the test has read of the master's stderr so far. */
  output(): string;
}

const { O_RDONLY, O_WRONLY, O_NONBLOCK } = fs.constants;
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

let dirs: string[] = [];
let fds: number[] = [];
let runs: Run[] = [];

afterEach(async () => {
  for (const r of runs) await kill(r);
  for (const fd of fds) closeQuietly(fd);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  runs = [];
  fds = [];
  dirs = [];
});

function closeQuietly(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    /* closed by the test already */
  }
}

/** SIGKILL for a master the test left running (a spinning one ignores SIGTERM), and its workers. */
async function kill(r: Run): Promise<void> {
  if (r.proc.exitCode !== null || r.proc.signalCode !== null) return;
  const workers = childrenOf(r.pid);
  r.proc.kill('SIGKILL');
  await r.exited;
  for (const w of workers) {
    for (const target of [-w, w]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

function config(dir: string, extra: Record<string, unknown> = {}): string {
  return writeConfig(dir, {
    name: 'logging',
    listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
    workers: { command: nodeWorker(), count: 1, stopTimeoutMs: 10000 },
    ...extra,
  });
}

function track(proc: ChildProcess, cfgFile: string, output: () => string): Run {
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const r: Run = { proc, pid: proc.pid!, runtimeDir: path.join(path.dirname(cfgFile), 'run'), exited, output };
  runs.push(r);
  return r;
}

/** The master's stdout and stderr are the write end of a FIFO (a pipe) whose read end the test holds. */
function startOnFifo(extra: Record<string, unknown> = {}, pipeSize?: number): Run & { read(): void; closeReader(): void } {
  const dir = tmpdir();
  dirs.push(dir);
  const fifo = path.join(dir, 'stderr.fifo');
  expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
  const rfd = fs.openSync(fifo, O_RDONLY | O_NONBLOCK);
  fds.push(rfd);
  if (pipeSize) {
    // F_SETPIPE_SZ (1031): a small pipe fills after a few dozen lines
    const py = 'import fcntl, os, sys; fcntl.fcntl(os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK), 1031, int(sys.argv[2]))';
    expect(spawnSync('python3', ['-c', py, fifo, String(pipeSize)]).status).toBe(0);
  }
  const wfd = fs.openSync(fifo, O_WRONLY);
  const cfg = config(dir, extra);
  const proc = spawn(process.execPath, [BATON, 'run', '-c', cfg], { stdio: ['ignore', wfd, wfd] });
  fs.closeSync(wfd);
  let out = '';
  const buf = Buffer.alloc(65536);
  const read = () => {
    for (;;) {
      let n = 0;
      try {
        n = fs.readSync(rfd, buf);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return;
        throw e;
      }
      if (n === 0) return;
      out += buf.toString('utf8', 0, n);
    }
  };
  const r = track(proc, cfg, () => (read(), out));
  return { ...r, read, closeReader: () => fs.closeSync(rfd) };
}

/** The master's stderr is a unix socket, as a Node parent's stdio 'pipe' is (a socketpair). */
function startOnSocket(extra: Record<string, unknown> = {}, wrapper: string[] = []): Run & { closeReader(): void } {
  const dir = tmpdir();
  dirs.push(dir);
  const cfg = config(dir, extra);
  const argv = [...wrapper, process.execPath, BATON, 'run', '-c', cfg];
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = '';
  proc.stderr!.on('data', (d) => (out += d));
  const r = track(proc, cfg, () => out);
  return { ...r, closeReader: () => proc.stderr!.destroy() };
}

/** The master's status, or an error after `ms` (a master that spins never answers). */
async function status(r: Run, ms = 10000): Promise<StatusReply> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no status from the master within ${ms} ms`)), ms);
  });
  try {
    const reply = await Promise.race([request(controlSocketPath(r.runtimeDir), { cmd: 'status' }), timeout]);
    if (!reply.ok) throw new Error(reply.error);
    return reply;
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for a status that satisfies `pred`; fails early, with the output, if the master exits. */
async function statusUntil(r: Run, what: string, pred: (s: StatusReply) => boolean): Promise<StatusReply> {
  return waitFor(
    what,
    async () => {
      if (r.proc.exitCode !== null) throw new Error(`master exited (${r.proc.exitCode}) while waiting for ${what}:\n${r.output()}`);
      try {
        const s = await status(r, 2000);
        return pred(s) && s;
      } catch (e) {
        if (/ENOENT|ECONNREFUSED|no status/.test((e as Error).message)) return false;
        throw e;
      }
    },
    30000,
    50,
  );
}

function portOf(s: StatusReply): number {
  return Number(/:(\d+)$/.exec(s.listeners[0].addresses[0])![1]);
}

/** CPU seconds the process used (utime + stime). */
function cpuSeconds(pid: number): number {
  const stat = readProcStat(pid);
  if (!stat) throw new Error(`process ${pid} is gone: no CPU time to read`);
  return stat.cpuTicks / CLK_TCK;
}

/** A loop detector with a generous bound: an idle master uses far less than half a core. */
async function expectIdle(pid: number): Promise<void> {
  const before = cpuSeconds(pid);
  await sleep(1000);
  expect(cpuSeconds(pid) - before).toBeLessThan(0.5);
}

async function reloadTo(r: Run, generation: number): Promise<StatusReply> {
  process.kill(r.pid, 'SIGHUP');
  return statusUntil(r, `reload to generation ${generation}`, (s) => s.generation === generation && s.lastReload?.ok === true);
}

/** SIGTERM stops it: exit 0, its workers gone. */
async function expectStopsOnSigterm(r: Run, workers: number[]): Promise<void> {
  r.proc.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve('still running 30 s after SIGTERM'), 30000)));
  const exit = await Promise.race([r.exited, late]);
  clearTimeout(timer);
  expect(exit).toEqual({ code: 0, signal: null });
  for (const w of workers) expect(isAlive(w)).toBe(false);
}

const workersOf = (s: StatusReply) => s.generations.flatMap((g) => g.workers.map((w) => w.pid));

describe('a failing log sink', () => {
  test('stderr is a pipe its reader closed (EPIPE): lines dropped and counted; the master serves, reloads, stays idle, stops on SIGTERM', async () => {
    const r = startOnFifo();
    await waitFor('generation 1 ready', () => /generation 1 ready/.test(r.output()));
    r.closeReader();
    const s = await reloadTo(r, 2);
    expect(s.log).toMatchObject({ target: 'stderr (pipe)', failing: { error: expect.stringMatching(/^EPIPE/) } });
    expect(s.log.dropped).toBeGreaterThan(0);
    expect((await get(portOf(s))).status).toBe(200);
    await expectIdle(r.pid);
    await expectStopsOnSigterm(r, workersOf(s));
  });

  test('stderr is a socket its reader closed (a Node parent): the same', async () => {
    const r = startOnSocket();
    await waitFor('generation 1 ready', () => /generation 1 ready/.test(r.output()));
    r.closeReader();
    const s = await reloadTo(r, 2);
    expect(s.log).toMatchObject({ target: 'stderr (socket)', failing: { error: expect.stringMatching(/^(EPIPE|ECONNRESET)/) } });
    expect((await get(portOf(s))).status).toBe(200);
    await expectIdle(r.pid);
    await expectStopsOnSigterm(r, workersOf(s));
  });

  test("the workers' stderr reader gone (the master's, closed): their own lines never kill them: a request in flight across a reload is answered", async () => {
    const r = startOnSocket();
    await waitFor('generation 1 ready', () => /generation 1 ready/.test(r.output()));
    const s1 = await status(r);
    r.closeReader();
    // the worker says on stderr that it holds the request, and on SIGTERM that it stops: both EPIPE
    const slow = get(portOf(s1), '/?delay=1500');
    await sleep(300);
    const s2 = await reloadTo(r, 2);
    const answer = await slow.catch((e: Error) => ({ status: 0, body: e.message }));
    expect(answer.status).toBe(200);
    await waitFor('generation 1 drained and gone', () => !workersOf(s1).some(isAlive));
    expect((await get(portOf(s2))).status).toBe(200);
    await expectStopsOnSigterm(r, workersOf(s2));
  });

  test('a stderr reader that stalls: lines dropped (EAGAIN), never waited for; once it reads again the log says how many were dropped', async () => {
    const r = startOnFifo({}, 4096);
    await waitFor('generation 1 ready', () => /generation 1 ready/.test(r.output()));
    // the test stops reading; each SIGUSR1 logs a line until the pipe is full
    const full = await waitFor(
      'lines dropped on the full pipe',
      async () => {
        process.kill(r.pid, 'SIGUSR1');
        const s = await status(r);
        return s.log?.failing ? s : undefined;
      },
      30000,
      20,
    );
    expect(full.log.failing!.error).toMatch(/^EAGAIN/);
    const s = await reloadTo(r, 2);
    expect(s.log.failing).not.toBeNull();
    expect((await get(portOf(s))).status).toBe(200);
    await expectIdle(r.pid);
    // read again: the next line goes out, then one saying how many were lost
    r.read();
    const dropped = (await status(r)).log.dropped;
    process.kill(r.pid, 'SIGUSR1');
    const m = await waitFor('the dropped-lines line', () => /log: (\d+) line\(s\) dropped since \S+ \(stderr \(pipe\): EAGAIN[^)]*\)\); writing again/.exec(r.output()) ?? undefined);
    expect(Number(m[1])).toBe(dropped);
    const after = await status(r);
    expect(after.log).toMatchObject({ failing: null, dropped });
    await expectStopsOnSigterm(r, workersOf(after));
  });

  // log.file must be a regular file (not /dev/full): a tmpfs of 64 KiB, filled, in a mount namespace of the master's own
  (IS_ROOT ? test : test.skip)('log.file on a full disk (a full tmpfs, ENOSPC): the master starts, serves, reloads, reopens on SIGUSR1, stays idle, stops on SIGTERM', async () => {
    const fullDisk = ['unshare', '-m', 'sh', '-c', 'd=$(dirname "$5")/full && mkdir "$d" && mount -t tmpfs -o size=64k,mode=0755 tmpfs "$d" && : >"$d/baton.log" && { cat /dev/zero >"$d/fill" 2>/dev/null; exec "$@"; }', 'sh'];
    const r = startOnSocket({ log: { file: 'full/baton.log' } }, fullDisk);
    const s1 = await statusUntil(r, 'generation 1 serving', (s) => s.phase === 'running' && s.generation === 1);
    expect(s1.log).toMatchObject({ target: expect.stringMatching(/^file \/.*\/full\/baton\.log$/), failing: { error: expect.stringMatching(/^ENOSPC/) } });
    expect((await get(portOf(s1))).status).toBe(200);
    const s2 = await reloadTo(r, 2);
    process.kill(r.pid, 'SIGUSR1');
    await statusUntil(r, 'the SIGUSR1 line counted', (s) => s.log.dropped > s2.log.dropped);
    await expectIdle(r.pid);
    await expectStopsOnSigterm(r, workersOf(s2));
  });

  test('stderr is the journal stream and journald goes away: counted, no loop, SIGTERM stops it', async () => {
    // JOURNAL_STREAM names fd 2 (device:inode), as systemd sets it for StandardError=journal
    const stream = 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$@"';
    // journald gone for good: as root, in a mount namespace of its own where journald's socket
    // folder is an empty tmpfs, so that the reconnection fails also where journald runs
    const gone = IS_ROOT
      ? ['unshare', '-m', '/bin/sh', '-c', `if [ -e /run/systemd/journal ]; then mount -t tmpfs baton-test /run/systemd/journal || exit 99; fi; ${stream}`, 'sh']
      : ['/bin/sh', '-c', stream, 'sh'];
    const r = startOnSocket({}, gone);
    await waitFor('generation 1 ready', () => /^<6>generation 1 ready/m.test(r.output()));
    r.closeReader();
    const s = await reloadTo(r, 2);
    expect(s.log.target).toBe('journal');
    // the reconnection fails too (not root, with a journald here: lines go there)
    if (IS_ROOT || !fs.existsSync('/run/systemd/journal/stdout')) {
      expect(s.log.dropped).toBeGreaterThan(0);
      expect(s.log.lastError?.error).toMatch(/ENOENT|ECONNREFUSED/);
    }
    expect((await get(portOf(s))).status).toBe(200);
    await expectIdle(r.pid);
    await expectStopsOnSigterm(r, workersOf(s));
  });
});
