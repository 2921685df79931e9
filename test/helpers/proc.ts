// Helpers that run the real thing: the built bin/baton, real workers, real sockets.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { request } from '../../src/control/client';
import { controlSocketPath, type StatusReply } from '../../src/contract/control';
import { loadableByAnyone } from '../../src/contract/signal-guard';
import { readProcStat } from '../../src/system/proc-stat';

export const ROOT = path.resolve(__dirname, '..', '..');
export const BATON = path.join(ROOT, 'bin', 'baton');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');
/** node's flags from bin/baton's first line (`#!/usr/bin/env -S node FLAGS`): a master here runs as bin/baton and /usr/bin/baton start one. */
export const NODE_FLAGS = /^#!\/usr\/bin\/env -S node (.*)$/m.exec(fs.readFileSync(BATON, 'utf8').split('\n')[0])?.[1].split(' ') ?? [];

/** The unprivileged account the tests that act as a second user run as (uid and gid). */
export const NOBODY = 65534;
/** Acting as two users needs root: such blocks are skipped otherwise, and say so. */
export const IS_ROOT = process.getuid?.() === 0;
export function rootOnly(name: string, fn: () => void): void {
  if (IS_ROOT) describe(name, fn);
  else describe.skip(`${name} [skipped: needs root]`, fn);
}

/** A new folder under /tmp; the test environment removes it after the test file (environment.js). */
export function tmpdir(prefix = 'baton-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  (globalThis as { batonTmpdirs?: string[] }).batonTmpdirs?.push(dir);
  return dir;
}

let shared: { node: string; baton: string } | undefined;
/**
 * bin/baton (and node) where another user can run them: for the tests that start baton as a
 * second user. A checkout may sit in a folder only its owner can enter (root's 0700 home on a
 * stock Debian, a mktemp -d folder), and the modes of the operator's folders are not the
 * tests' to widen; so each test file that needs it gets a copy of what runs (package.json's
 * `files` in bin/ and dist/: the installed tree's layout) in a 0755 folder of tmpdir(). The
 * bundle finds the addon, the signal guard and the Node adapter beside it there, as in
 * /usr/lib/baton. A copy rather than a read-only bind mount: the tests spawn these processes
 * themselves, so a private mount namespace would have to wrap jest, and only root has one.
 * node is copied too only when it is itself out of others' reach (e.g. nvm's, under a home).
 */
export function forAnyone(): { node: string; baton: string } {
  if (shared) return shared;
  const top = tmpdir('baton-shared-');
  fs.chmodSync(top, 0o755);
  const put = (from: string, to: string, mode: number) => {
    fs.mkdirSync(path.dirname(path.join(top, to)), { recursive: true });
    fs.copyFileSync(from, path.join(top, to));
    // the modes whatever the umask
    for (let d = path.dirname(to); d !== '.'; d = path.dirname(d)) fs.chmodSync(path.join(top, d), 0o755);
    fs.chmodSync(path.join(top, to), mode);
  };
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
  put(path.join(ROOT, 'package.json'), 'package.json', 0o644); // the version it reports
  for (const f of pkg.files.filter((x) => /^(bin|dist)\//.test(x))) put(path.join(ROOT, f), f, f.startsWith('bin/') ? 0o755 : 0o644);
  const node = loadableByAnyone(process.execPath) ? process.execPath : path.join(top, 'bin', 'node');
  if (node !== process.execPath) put(process.execPath, 'bin/node', 0o755);
  return (shared = { node, baton: path.join(top, 'bin', 'baton') });
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 20000, everyMs = 25): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A TCP port on 127.0.0.1 free right now (bound and closed), for what takes no port 0 (systemd-socket-activate, a Prometheus). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export { isAlive } from '../../src/system/process';

/** Writes a config file into `dir` and returns its path. */
export function writeConfig(dir: string, cfg: Record<string, unknown>, file = 'baton.json'): string {
  const p = path.join(dir, file);
  const full = { runtimeDir: path.join(dir, 'run'), ...cfg };
  fs.writeFileSync(p, JSON.stringify(full, null, 2));
  return p;
}

export interface Master {
  proc: ChildProcess;
  pid: number;
  config: string;
  runtimeDir: string;
  output(): string;
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  status(): Promise<StatusReply>;
}

/** Starts `baton run -c config` (optionally through a wrapper command such as systemd-socket-activate or setpriv: then with forAnyone()'s node and baton). */
export function startMaster(config: string, opts: { env?: NodeJS.ProcessEnv; wrapper?: string[]; node?: string; baton?: string } = {}): Master {
  const argv = [...(opts.wrapper ?? []), opts.node ?? process.execPath, ...NODE_FLAGS, opts.baton ?? BATON, 'run', '-c', config];
  const proc = spawn(argv[0], argv.slice(1), {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const cfg = JSON.parse(fs.readFileSync(config, 'utf8'));
  const runtimeDir = path.resolve(path.dirname(config), cfg.runtimeDir);
  const m: Master = {
    proc,
    pid: proc.pid!,
    config,
    runtimeDir,
    output: () => out,
    exited,
    waitForOutput: (re, timeoutMs = 20000) => waitFor(`output ${re}`, () => out.match(re) ?? undefined, timeoutMs),
    status: async () => {
      const r = await request(controlSocketPath(runtimeDir), { cmd: 'status' });
      if (!r.ok) throw new Error(r.error);
      return r;
    },
  };
  return m;
}

/** Waits until the master's first generation is ready; returns its status. */
export async function ready(m: Master, timeoutMs = 20000): Promise<StatusReply> {
  await Promise.race([
    m.waitForOutput(/generation \d+ ready: /, timeoutMs),
    m.exited.then((e) => {
      throw new Error(`master exited (${e.code ?? e.signal}) before it was ready:\n${m.output()}`);
    }),
  ]);
  return m.status();
}

export function portOf(s: StatusReply, name = 'http'): number {
  const l = s.listeners.find((x) => x.name === name);
  if (!l) throw new Error(`no listener ${name}`);
  return Number(/:(\d+)$/.exec(l.addresses[0])![1]);
}

export function workerPids(s: StatusReply): number[] {
  return s.generations.flatMap((g) => g.workers.map((w) => w.pid));
}

/**
 * SIGKILL for a process a test left running and for its children's process groups (a
 * master's workers, which a SIGKILLed master cannot stop).
 */
export async function killTree(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const children = proc.pid ? childrenOf(proc.pid) : [];
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGKILL');
  await exited;
  for (const c of children) {
    for (const target of [-c, c]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}

/** After a test (also a failed one): its master stopped, its temporary folder removed. */
export async function cleanupAll(m: Master | undefined, dir: string | undefined): Promise<void> {
  await cleanup(m);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

/** Stops the master if a test left it running (SIGKILL to it and its workers' groups). For a master started directly; one under a subreaper: service.ts's stopService(). */
export async function cleanup(m: Master | undefined): Promise<void> {
  if (!m || m.proc.exitCode !== null || m.proc.signalCode !== null) return;
  let pids: number[] = [];
  try {
    pids = workerPids(await m.status());
  } catch {
    /* no control socket */
  }
  m.proc.kill('SIGINT');
  const t = setTimeout(() => m.proc.kill('SIGKILL'), 5000);
  await m.exited;
  clearTimeout(t);
  for (const p of pids) {
    try {
      process.kill(-p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export function get(port: number, urlPath = '/', host = '127.0.0.1'): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: urlPath, agent: false, timeout: 30000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

export function getUnix(socketPath: string, urlPath = '/'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: urlPath, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

/** The processes whose parent is `pid`. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    // undefined: exited meanwhile
    if (/^\d+$/.test(d) && readProcStat(Number(d))?.ppid === pid) out.push(Number(d));
  }
  return out;
}

/** The live processes (zombies left out) of process group `pgid`. */
export function groupMembers(pgid: number): number[] {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((pid) => {
    const st = readProcStat(pid); // undefined: exited meanwhile
    return st?.pgid === pgid && st.state !== 'Z';
  });
}

export const PAGE_SIZE = Number(spawnSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).stdout);

/** A process's resident bytes by /proc/PID/statm, the kernel's own counter. */
export const statmRss = (pid: number): number => Number(fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]) * PAGE_SIZE;

export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Runs bin/baton synchronously (check, reload, status, stop). */
export function baton(args: string[], env?: NodeJS.ProcessEnv): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BATON, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Runs bin/baton asynchronously (so the test's event loop keeps going, e.g. a fake notify
 * socket). `killAfterMs`: SIGKILLed then (code null), so a client that hangs fails the test
 * instead of hanging it; `ms` is how long it ran.
 */
export function batonAsync(args: string[], killAfterMs = Infinity): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BATON, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const kill = killAfterMs < Infinity ? setTimeout(() => p.kill('SIGKILL'), killAfterMs) : undefined;
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.once('close', (code) => {
      clearTimeout(kill);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

/** The node worker fixture, with its knobs in the environment (see fixtures/node-worker.js). */
export function nodeWorker(): string[] {
  return [process.execPath, path.join(FIXTURES, 'node-worker.js')];
}

/**
 * Starts `argv` as `nobody` in a session of its own (setsid), with the pid `pid` (free now: a
 * test's dead process's), as a recycled pid would be: /proc/sys/kernel/ns_last_pid (root) names
 * the pid handed out before; another process of the machine may fork in between, so it is tried
 * again until it lands. Root only.
 */
export async function startAtPid(pid: number, argv: string[]): Promise<ChildProcess> {
  // A process is told from an earlier one with its pid by its start time, in clock ticks (10 ms):
  // one started within the same tick would pass for it. No pid space wraps that fast outside a
  // test that picks the pid, so this one waits past the tick its pid's last owner may have had.
  await sleep(30);
  for (let attempt = 0; attempt < 200; attempt++) {
    fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
    const p = spawn(argv[0], argv.slice(1), { detached: true, stdio: 'ignore', uid: NOBODY, gid: NOBODY });
    if (p.pid === pid) return p;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  }
  throw new Error(`could not start a process with pid ${pid} (is it still in use?)`);
}

/**
 * A light worker (perl, a few MB) that sends READY=1 and STATUS=$S from its own pid, then
 * sleeps: many workers with a long STATUS= make a large status answer at little cost.
 */
export const STATUS_WORKER = [
  'perl',
  '-MSocket',
  '-e',
  'socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die; (my $a = $ENV{NOTIFY_SOCKET}) =~ s/^@/\\0/; ' +
    'send($s, "READY=1\\nSTATUS=$ENV{S}", 0, pack_sockaddr_un($a)) or die "send: $!"; sleep 1000000',
];

