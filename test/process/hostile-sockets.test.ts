// Sockets against a hostile neighbour (issue 9, items 3, 4, 6 and the first half of 10):
// a symlink swapped in for a unix listener, a notify name taken first, a notify flood, odd
// inherited sockets, oversized notify datagrams. Everything here runs the real bin/baton.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { native, type NotifyReceiverHandle } from '../../src/native';
import { notifySocketOf } from '../helpers/notify-socket';
import { BATON, cleanup, fdCount, FIXTURES, get, getUnix, NOBODY, nodeWorker, portOf, ready, rootOnly, sleep, startMaster, tmpdir, waitFor, workerPids, writeConfig, type Master } from '../helpers/proc';

let m: Master | undefined;
let held: NotifyReceiverHandle | undefined;
const dirs: string[] = [];
const dir = () => {
  const d = tmpdir();
  dirs.push(d);
  return d;
};
afterEach(async () => {
  await cleanup(m);
  m = undefined;
  held?.close();
  held = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** The exit, or 'ready' when the master came up (it is then stopped by afterEach). */
const outcome = (master: Master) =>
  waitFor('the master to exit or be ready', () => {
    const { exitCode: code, signalCode: signal } = master.proc;
    if (code !== null || signal !== null) return { code, signal };
    return /generation \d+ ready: /.test(master.output()) && ('ready' as const);
  });

describe('a unix listener is created with its mode: no chmod that could follow a swapped-in symlink', () => {
  let shim: string;
  beforeAll(() => {
    shim = path.join(tmpdir(), 'chmod-swap-shim.so');
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-o', shim, path.join(FIXTURES, 'chmod-swap-shim.c'), '-ldl']);
  });
  afterAll(() => fs.rmSync(path.dirname(shim), { recursive: true, force: true }));

  test('the shim swaps: a Node process that chmods the path by name reaches the victim behind it', () => {
    const d = dir();
    const sock = path.join(d, 'web.sock');
    const victim = path.join(d, 'victim');
    const log = path.join(d, 'shim.log');
    fs.writeFileSync(sock, '');
    fs.writeFileSync(victim, 'root-only secret\n', { mode: 0o600 });
    fs.chmodSync(victim, 0o600);
    // what baton did before it created the socket with its mode: a chmod by path, from Node
    execFileSync(process.execPath, ['-e', `require('fs').chmodSync(${JSON.stringify(sock)}, 0o666)`], {
      env: { ...process.env, LD_PRELOAD: shim, SHIM_PATH: sock, SHIM_VICTIM: victim, SHIM_LOG: log },
    });
    expect((fs.statSync(victim).mode & 0o7777).toString(8)).toBe('666');
    expect(fs.lstatSync(sock).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(log, 'utf8')).toMatch(/^chmod\(.*web\.sock\): swapped in a symlink to .*victim\n/);
  });

  test.each([
    ['0666', '077'],
    ['0640', '000'],
  ])('mode %s under umask %s: the socket file has exactly that mode, a victim file behind a symlink is untouched', async (mode, umask) => {
    const d = dir();
    const sock = path.join(d, 'web.sock');
    const victim = path.join(d, 'victim');
    const log = path.join(d, 'shim.log');
    fs.writeFileSync(victim, 'root-only secret\n', { mode: 0o600 });
    fs.chmodSync(victim, 0o600);
    const cfg = writeConfig(d, {
      name: 'unixmode',
      listeners: [{ name: 'web', unix: sock, mode }],
      workers: { command: nodeWorker(), count: 1 },
    });
    // the shim swaps a symlink to `victim` in for the socket file whenever baton chmods/chowns its path
    m = startMaster(cfg, {
      wrapper: ['sh', '-c', `umask ${umask}; exec "$@"`, 'sh'],
      env: { LD_PRELOAD: shim, SHIM_PATH: sock, SHIM_VICTIM: victim, SHIM_LOG: log },
    });
    await ready(m);
    expect(m.output()).not.toMatch(/LD_PRELOAD/); // the loader would say so had it not loaded the shim
    const swaps = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
    expect({ victimMode: (fs.statSync(victim).mode & 0o7777).toString(8), swaps }).toEqual({ victimMode: '600', swaps: '' });
    const st = fs.lstatSync(sock);
    expect(st.isSocket()).toBe(true);
    expect((st.mode & 0o7777).toString(8)).toBe(mode.slice(1));
    expect((await getUnix(sock)).status).toBe(200);
    // the master's own umask is left as it was (it is shared with libuv's threadpool)
    expect(fs.readFileSync(`/proc/${m.pid}/status`, 'utf8')).toMatch(new RegExp(`^Umask:\\s+0${umask}$`, 'm'));
  });
});

describe("a unix listener's missing folder is made by baton, never reached through someone else's symlink", () => {
  test('folders missing on the way are made, 0755 whatever the umask, and the socket is bound in them', async () => {
    const d = dir();
    const sock = path.join(d, 'a', 'b', 'api.sock');
    const cfg = writeConfig(d, { name: 'mkdir', listeners: [{ name: 'api', unix: sock }], workers: { command: nodeWorker(), count: 1 } });
    m = startMaster(cfg, { wrapper: ['sh', '-c', 'umask 077; exec "$@"', 'sh'] });
    await ready(m);
    for (const f of [path.join(d, 'a'), path.join(d, 'a', 'b')]) {
      const st = fs.lstatSync(f);
      expect({ folder: st.isDirectory(), mode: (st.mode & 0o7777).toString(8), uid: st.uid }).toEqual({ folder: true, mode: '755', uid: process.geteuid!() });
    }
    expect((await getUnix(sock)).status).toBe(200);
  });

  rootOnly('as root', () => {
    test("a symlink another user planted where the listener's folder is missing: exit 1 naming it; nothing is bound through it", async () => {
      const d = dir();
      fs.chmodSync(d, 0o755);
      // a shared sticky folder (/tmp), where anyone may create the name first
      const shared = path.join(d, 'shared');
      fs.mkdirSync(shared);
      fs.chmodSync(shared, 0o1777);
      const elsewhere = path.join(d, 'elsewhere');
      fs.mkdirSync(elsewhere);
      const planted = path.join(shared, 'app');
      fs.symlinkSync(elsewhere, planted);
      fs.lchownSync(planted, NOBODY, NOBODY);
      const sock = path.join(planted, 'api.sock');
      const cfg = writeConfig(d, { name: 'mkdir', listeners: [{ name: 'api', unix: sock }], workers: { command: nodeWorker(), count: 1 } });
      m = startMaster(cfg);
      expect(await outcome(m)).toEqual({ code: 1, signal: null });
      expect(m.output()).toContain(`cannot start: listener 'api': cannot use the folder of ${sock}: ${planted} is a symlink owned by uid 65534, not by uid 0 or root`);
      expect(fs.readdirSync(elsewhere)).toEqual([]);
    });
  });
});

describe("the workers' NOTIFY_SOCKET: nobody can take its name first or flood the master", () => {
  test('the name baton used to derive from its pid, bound first by someone else, does not stop baton run', async () => {
    const d = dir();
    const gate = path.join(d, 'gate');
    const cfg = writeConfig(d, {
      name: 'squat',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: nodeWorker(), count: 1 },
    });
    // the shell waits for the gate, then execs baton: same pid, so its old name is known in advance
    m = startMaster(cfg, { wrapper: ['sh', '-c', 'while [ ! -e "$0" ]; do sleep 0.05; done; exec "$@"', gate] });
    held = native.notifyBind(`@baton/squat/${m.pid}/notify`, () => undefined);
    fs.writeFileSync(gate, '');
    const s = await ready(m);
    expect((await get(portOf(s))).status).toBe(200);
    const addr = notifySocketOf(workerPids(s)[0]);
    expect(addr).toMatch(new RegExp(`^@baton/squat/${m.pid}/[0-9a-f]{32}$`));
  });

  test('a flood from a process that is not a worker is dropped unread: no log line per message, counted in status', async () => {
    const d = dir();
    const cfg = writeConfig(d, {
      name: 'flood',
      log: { level: 'debug' },
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: nodeWorker(), count: 1 },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    const addr = notifySocketOf(workerPids(s)[0]);
    const n = 500;
    // from another process (not a worker): sendto() blocks while the master's queue is full, so
    // this test's event loop keeps reading the master's output meanwhile
    const flood = [
      'import socket, sys',
      "a = '\\0' + sys.argv[1][1:]",
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      `for i in range(${n}): s.sendto(b'STATUS=flood %d\\nREADY=1\\nWATCHDOG=1' % i, a)`,
    ].join('\n');
    const sender = spawn('python3', ['-c', flood, addr], { stdio: 'inherit' });
    expect(await new Promise((r) => sender.once('exit', r))).toBe(0);
    // wait until the master has seen them all, one way or the other
    const master = m;
    const st = await waitFor('the flood to be seen', async () => {
      const now = await master.status();
      return ((now.notifyDropped?.notFromWorkers ?? 0) >= n || /ignored a notification from pid/.test(master.output())) && now;
    });
    expect(master.output()).not.toMatch(/ignored a notification from pid/);
    expect(st.notifyDropped?.notFromWorkers).toBe(n);
    expect(JSON.stringify(st.generations)).not.toContain('flood');
  });
});

/** Starts notify-attack.py (it drops to nobody) and resolves once it printed `word`; killed by afterEach. */
const attackers: ChildProcess[] = [];
afterEach(() => attackers.splice(0).forEach((a) => a.kill('SIGKILL')));
async function attack(args: string[], word: string): Promise<void> {
  const a = spawn('python3', [path.join(FIXTURES, 'notify-attack.py'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  attackers.push(a);
  let out = '';
  a.stdout!.on('data', (d) => (out += d));
  await waitFor(`the attacker to say ${word}`, () => out.includes(word) || a.exitCode !== null);
  if (!out.includes(word)) throw new Error(`notify-attack.py ${args.join(' ')} exited ${a.exitCode}`);
}

/** ms a call takes. */
async function took(fn: () => Promise<unknown>): Promise<number> {
  const t = Date.now();
  await fn();
  return Date.now() - t;
}

rootOnly("the workers' NOTIFY_SOCKET: what a stranger sends cannot stall the master or its workers", () => {
  test('fds sent with a datagram are never closed on the loop: 4 TCP sockets lingering 5 s each do not stall the master (it answered after ~20 s before)', async () => {
    const d = dir();
    const cfg = writeConfig(d, { name: 'linger', listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: nodeWorker(), count: 1 } });
    m = startMaster(cfg);
    const s = await ready(m);
    const base = fdCount(m.pid);
    await attack([notifySocketOf(workerPids(s)[0]), 'linger', '4', '5'], 'sent');
    const master = m;
    // the datagrams are in the master's queue now; status is read behind them
    const ms = await took(() => master.status());
    expect({ statusMs: ms < 3000 ? 'under 3 s' : ms }).toEqual({ statusMs: 'under 3 s' });
    expect((await get(portOf(s))).status).toBe(200);
    // SO_LINGER is turned off before the closer thread closes them: they are gone at once
    await waitFor('the received fds to be closed', () => fdCount(master.pid) <= base, 3000);
    expect((await master.status()).notifyDropped?.notFromWorkers).toBe(4);
  });

  test("with the master stopped and its queue filled by a stranger, workers keep serving (their sd_notify sends never wait)", async () => {
    const d = dir();
    const cfg = writeConfig(d, {
      name: 'fullq',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: [process.execPath, path.join(FIXTURES, 'watchdog-worker.js')], count: 2, watchdogMs: 400 },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    const port = portOf(s);
    m.proc.kill('SIGSTOP');
    try {
      await attack([notifySocketOf(workerPids(s)[0]), 'fill'], 'full');
      // WATCHDOG=1 every 200 ms: a blocking send would hang each worker at its next ping
      await sleep(1000);
      for (let i = 0; i < 10; i++) {
        const r = await Promise.race([get(port), sleep(2000).then(() => ({ status: 'no answer in 2 s' }))]);
        expect(r.status).toBe(200);
      }
    } finally {
      m.proc.kill('SIGCONT');
    }
    // the queued pings reach the master once it reads again; the watchdog does not count the
    // time the master itself was stopped against the workers: nobody was killed
    await sleep(1000);
    const after = await m.status();
    expect(workerPids(after).sort()).toEqual(workerPids(s).sort());
  });

  test("a stalled systemd (its notify queue full) never blocks the master: status answers while the pings wait", async () => {
    const d = dir();
    const sdSock = path.join(d, 'systemd-notify.sock');
    // a NOTIFY_SOCKET nobody reads (systemd busy), its queue full
    const stall = spawn('python3', ['-c', [
      'import socket, sys, time',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      's.bind(sys.argv[1])',
      'f = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      'f.setblocking(False)',
      'try:',
      "    while True: f.sendto(b'X=1', sys.argv[1])",
      'except BlockingIOError: pass',
      "print('full', flush=True)",
      'time.sleep(60)',
    ].join('\n'), sdSock], { stdio: ['ignore', 'pipe', 'inherit'] });
    attackers.push(stall);
    let said = '';
    stall.stdout!.on('data', (b) => (said += b));
    await waitFor('the stalled systemd to be full', () => said.includes('full'));
    const cfg = writeConfig(d, { name: 'sdfull', listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: nodeWorker(), count: 1 } });
    // WATCHDOG=1 every 50 ms, READY=1 and STATUS= all find systemd's queue full
    m = startMaster(cfg, { env: { NOTIFY_SOCKET: sdSock, WATCHDOG_USEC: '100000' } });
    const s = await ready(m);
    const master = m;
    for (let i = 0; i < 5; i++) {
      const ms = await took(() => master.status());
      expect({ statusMs: ms < 3000 ? 'under 3 s' : ms }).toEqual({ statusMs: 'under 3 s' });
      await sleep(200);
    }
    expect((await get(portOf(s))).status).toBe(200);
  });
});

describe('inherited sockets: only listening stream sockets of inet, inet6 or unix', () => {
  const PASS = path.join(FIXTURES, 'pass-socket.py');
  const inheriting = (env: NodeJS.ProcessEnv = {}) => {
    const d = dir();
    return { d, cfg: writeConfig(d, { name: 'inherit', listeners: [{ name: 'web' }], workers: { command: nodeWorker(), count: 1 } }), env };
  };

  test.each([
    ['unbound-tcp', /fd 3 \(name 'web'\) is not listening: it is not even bound/],
    ['bound-tcp', /fd 3 \(name 'web'\) is bound to 127\.0\.0\.1:\d+ but not listening/],
    ['connected-tcp', /fd 3 \(name 'web'\) is a connected socket \(127\.0\.0\.1:\d+\), not a listening one/],
    ['udp', /fd 3 \(name 'web'\) is a dgram socket, not a stream socket/],
    ['seqpacket', /fd 3 \(name 'web'\) is a seqpacket socket, not a stream socket/],
    ['netlink', /fd 3 \(name 'web'\) is not an inet, inet6 or unix socket/],
  ])('%s as fd 3: exit 78, naming the fd and its LISTEN_FDNAMES name', async (kind, re) => {
    const { cfg } = inheriting();
    m = startMaster(cfg, { wrapper: ['python3', PASS, kind] });
    expect(await outcome(m)).toEqual({ code: 78, signal: null });
    expect(m.output()).toMatch(re);
  });

  test('the same for a successor master (an upgrade hands sockets over the same way)', async () => {
    const { cfg } = inheriting();
    m = startMaster(cfg, {
      wrapper: ['python3', PASS, 'unbound-tcp'],
      env: { BATON_UPGRADE_FD: '9', BATON_NEXT_GENERATION: '2', BATON_LISTENER_ORIGINS: 'predecessor' },
    });
    expect(await outcome(m)).toEqual({ code: 78, signal: null });
    expect(m.output()).toMatch(/fd 3 \(name 'web'\) is not listening: it is not even bound/);
  });

  test("a successor that refuses what it was handed tells its predecessor why, over the upgrade channel", async () => {
    const { cfg } = inheriting();
    // fd 9 is the channel, a socketpair as a predecessor makes it; this test is the predecessor
    const stdio: Array<'ignore' | 'pipe'> = ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'ignore', 'pipe'];
    const p = spawn('python3', [PASS, 'unbound-tcp', process.execPath, BATON, 'run', '-c', cfg], {
      env: { ...process.env, BATON_UPGRADE_FD: '9', BATON_NEXT_GENERATION: '2', BATON_LISTENER_ORIGINS: 'predecessor' },
      stdio,
    });
    const channel = (p.stdio as unknown as Readable[])[9];
    let said = '';
    channel.on('data', (d) => (said += d));
    const closed = new Promise((r) => channel.once('end', r));
    const code = await new Promise((r) => p.once('exit', r));
    await closed;
    expect(code).toBe(78);
    const messages = said.trim().split('\n').map((l) => JSON.parse(l));
    expect(messages).toEqual([
      { t: 'hello', pid: p.pid },
      { t: 'failed', reason: expect.stringMatching(/^bad inherited sockets: .*fd 3 \(name 'web'\) is not listening: it is not even bound/) },
    ]);
  });

  test.each(['listening-tcp', 'listening-tcp6'])('%s as fd 3 is served as it is', async (kind) => {
    const { cfg } = inheriting();
    m = startMaster(cfg, { wrapper: ['python3', PASS, kind] });
    const s = await ready(m);
    const web = s.listeners.find((l) => l.name === 'web')!;
    expect(web.source).toBe('systemd');
    expect(web.addresses[0]).toMatch(kind === 'listening-tcp' ? /^127\.0\.0\.1:\d+$/ : /^\[::1\]:\d+$/);
    expect((await get(portOf(s, 'web'), '/', kind === 'listening-tcp' ? '127.0.0.1' : '::1')).status).toBe(200);
  });
});

describe('fds baton inherited beyond its sockets', () => {
  test('never reach a worker: a stray fd 251 from whatever started baton is close-on-exec from the start', async () => {
    const d = dir();
    const cfg = writeConfig(d, { name: 'strayfd', listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: nodeWorker(), count: 1 } });
    // as a launcher that is not systemd would: an fd left open on 251
    m = startMaster(cfg, { wrapper: ['bash', '-c', 'exec 251</dev/null; exec "$@"', 'bash'] });
    const s = await ready(m);
    expect(fs.existsSync(`/proc/${m.pid}/fd/251`)).toBe(true);
    const w = workerPids(s)[0];
    expect(fs.readdirSync(`/proc/${w}/fd`).map(Number)).not.toContain(251);
  });
});

describe('notify datagrams over 4 KB', () => {
  test("are dropped whole (MSG_TRUNC), as systemd does: a worker's cut STATUS= is never taken", async () => {
    const d = dir();
    // one datagram of 5 KB whose READY=1 would be cut off, then a plain READY=1
    const worker = [
      'import os, socket, time',
      "a = os.environ['NOTIFY_SOCKET']",
      "a = '\\0' + a[1:] if a.startswith('@') else a",
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      "s.sendto(b'STATUS=' + b'x' * 5000 + b'\\nREADY=1', a)",
      "s.sendto(b'READY=1', a)",
      'time.sleep(600)',
    ].join('\n');
    const cfg = writeConfig(d, {
      name: 'big',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: ['python3', '-c', worker], count: 1, stopTimeoutMs: 2000 },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    const w = s.generations[0].workers[0];
    expect(w.status === undefined ? 'no STATUS=' : `STATUS= of ${w.status.length} bytes`).toBe('no STATUS=');
    expect(m.output()).toMatch(/worker 0 \(pid \d+\) sent a notification longer than 4096 bytes: ignored/);
    expect(s.notifyDropped?.truncated).toBe(1);
  });
});
