// The binary upgrade in-process, on the fake world (helpers/fake-master.ts): the predecessor's
// phases and events with a fake successor (FakeLaunchSuccessor) and a stand-in for systemd's
// notify socket; the successor's own side with a real channel whose other end is the test.
// The real processes: test/process/upgrade*.test.ts.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { controlSocketPath, type ControlReply } from '../../src/contract/control';
import { native, socketFd } from '../../src/native';
import type { FakeSuccessor } from '../helpers/fake-world';
import {
  exitAll, exitCode, gone, phase, reload, running, settle, spawnAll, startMaster, status, stop, until, upgrade, useFakeMasters, type Options, type World,
} from '../helpers/fake-master';

useFakeMasters();

const oldbin = (w: World) => `${w.pidfile}.oldbin`;
const pidfileNames = (file: string) => fs.readFileSync(file, 'utf8').trim();

/** A master serving generation 1 that took USR2: phase upgrading, its successor started. */
async function upgrading(o: Options = {}): Promise<{ w: World; s: FakeSuccessor; replies: ControlReply[] }> {
  const w = await running({ count: 1, systemd: true, ...o });
  const replies = upgrade(w);
  expect(phase(w)).toBe('upgrading');
  return { w, s: w.successors.last, replies };
}

/**
 * What the master has told systemd so far: a datagram the test sends after it arrives after
 * all of them (one receiving socket, in order), so this also says what was not sent.
 */
async function toldSystemd(w: World): Promise<Array<Map<string, string>>> {
  const marker = `marker-${w.systemd!.messages.length}`;
  native.notifySend(w.systemd!.socket, Buffer.from(`X_TEST=${marker}`));
  await until('the marker to reach the fake systemd', () => w.systemd!.with('X_TEST', marker).length > 0);
  const all = w.systemd!.messages.map((m) => m.fields);
  return all.slice(0, all.findIndex((f) => f.get('X_TEST') === marker)).filter((f) => !f.has('X_TEST'));
}

const lastStatus = async (w: World) => (await toldSystemd(w)).filter((f) => f.has('STATUS')).at(-1)?.get('STATUS');

/** The successor says it is ready; the master handles it. */
async function ready(s: FakeSuccessor): Promise<void> {
  s.makeReady();
  await settle();
}

describe("the predecessor's side", () => {
  test('USR2 in running: upgrading, the pidfile renamed to .oldbin, the successor started with the sockets and the next number; requests refused with their reasons', async () => {
    const { w, s } = await upgrading({ tcp: true });
    expect(gone(w.pidfile)).toBe(true);
    expect(pidfileNames(oldbin(w))).toBe(String(process.pid));
    const listener = status(w).listeners[0];
    expect(s.spec).toEqual(expect.objectContaining({ argv: [process.execPath], cwd: w.dir, fds: listener.fds, names: ['http'], sources: ['config'], nextGeneration: 2 }));
    // the successor may speak to systemd once confirmed
    expect(s.spec.env.NOTIFY_SOCKET).toBe(w.systemd!.socket);
    expect(status(w).upgrade).toEqual({ state: 'successor starting', successorPid: undefined, last: null });
    expect(reload(w)).toEqual([{ ok: false, error: 'reload refused: an upgrade is under way' }]);
    expect(upgrade(w)).toEqual([{ ok: false, error: 'upgrade refused: an upgrade is already under way' }]);
    w.master.post({ kind: 'winch' });
    w.master.post({ kind: 'resize', delta: 1 });
    expect(w.lines).toEqual(expect.arrayContaining(['warn SIGWINCH refused: an upgrade is under way', 'warn SIGTTIN refused: an upgrade is under way']));
    expect(w.successors.successors).toHaveLength(1);
    expect(phase(w)).toBe('upgrading');
    expect(w.launch.of(1)[0].stops).toEqual([]);
    // STATUS= keeps saying the upgrade while a worker restarts
    w.launch.of(1)[0].exit({ code: 1, signal: null });
    w.clock.advance(0);
    expect(w.launch.of(1)).toHaveLength(2);
    expect(await lastStatus(w)).toBe('upgrading; generation 1: 1/1 workers ready');
  });

  test('auto: ready -> MAINPID, then confirm with the next number; took-over -> stopping, `baton upgrade` answered, drained, exit 0, the successor\'s files left alone', async () => {
    const { w, s, replies } = await upgrading();
    w.clock.advance(1500);
    await ready(s);
    expect(phase(w)).toBe('upgrading');
    expect(s.confirms).toEqual([3]);
    await until('MAINPID= to reach systemd', () => w.systemd!.with('MAINPID').length > 0);
    expect(w.systemd!.with('MAINPID').map((m) => m.fields.get('MAINPID'))).toEqual([String(s.pid)]);
    expect(replies).toEqual([]);
    s.takeOver();
    await settle();
    expect(replies).toEqual([{ ok: true, oldPid: process.pid, newPid: s.pid, ms: 1500, manual: false }]);
    expect(phase(w)).toBe('stopping');
    expect(status(w).upgrade.last).toEqual({ at: expect.any(String), ok: true, successor: s.pid, ms: 1500 });
    expect(w.launch.of(1)[0].stops).toEqual([['SIGTERM', 7000]]);
    // the successor's pidfile stands where ours was; control.sock is its own now
    fs.writeFileSync(w.pidfile, `${s.pid}\n`);
    exitAll(w.launch.workers);
    expect(await exitCode(w)).toBe(0);
    expect(gone(oldbin(w))).toBe(true);
    expect(pidfileNames(w.pidfile)).toBe(String(s.pid));
    expect(fs.statSync(controlSocketPath(w.runtimeDir)).isSocket()).toBe(true);
    expect(s.aborts).toEqual([]);
  });

  test('the successor fails: rolled back to running, the pidfile renamed back, `baton upgrade` answered as failed, the successor aborted, upgrade.last; the next USR2 is taken', async () => {
    const { w, s, replies } = await upgrading();
    s.hello();
    w.clock.advance(200);
    s.failed('the code on disk refuses the config: config error in x');
    await settle();
    const reason = `the successor (pid ${s.pid}) failed: the code on disk refuses the config: config error in x`;
    expect(replies).toEqual([{ ok: false, error: `upgrade failed: ${reason}` }]);
    expect(phase(w)).toBe('running');
    expect(pidfileNames(w.pidfile)).toBe(String(process.pid));
    expect(gone(oldbin(w))).toBe(true);
    expect(s.aborts).toEqual([{ reason, stopSignal: 'SIGTERM', graceMs: 9000, ours: expect.arrayContaining([controlSocketPath(w.runtimeDir)]) }]);
    expect(status(w).upgrade).toEqual({ state: 'none', last: { at: expect.any(String), ok: false, successor: s.pid, error: reason, ms: 200 } });
    expect(w.lines).toContainEqual(`error upgrade failed and rolled back, generation 1 keeps serving: ${reason}`);
    await until('STATUS=upgrade failed', () => w.systemd!.with('STATUS', `upgrade failed: ${reason}; generation 1: 1/1 workers ready`).length > 0);
    expect(w.launch.of(1)[0].stops).toEqual([]);
    upgrade(w);
    expect(phase(w)).toBe('upgrading');
    expect(w.successors.successors).toHaveLength(2);
  });

  test('a failed upgrade is answered once rolled back: when `baton upgrade` hears of the failure, the pidfile has its name back', async () => {
    const w = await running({ count: 1, systemd: true });
    const seen: Array<{ ok: boolean; pidfile: boolean; oldbin: boolean }> = [];
    // what a client reading the pidfile right after the answer would find
    w.master.post({ kind: 'upgrade', source: 'test', reply: (r) => void seen.push({ ok: r.ok, pidfile: !gone(w.pidfile), oldbin: !gone(oldbin(w)) }) });
    w.successors.last.failed('the code on disk refuses the config');
    await settle();
    expect(seen).toEqual([{ ok: false, pidfile: true, oldbin: false }]);
  });

  test('not ready within upgrade.timeoutMs (fake time): rolled back', async () => {
    const { w, s, replies } = await upgrading({ upgradeTimeoutMs: 3000 });
    w.clock.advance(2999);
    await settle();
    expect(phase(w)).toBe('upgrading');
    w.clock.advance(1);
    await settle();
    expect(replies).toEqual([{ ok: false, error: 'upgrade failed: the successor was not ready within 3000 ms' }]);
    expect(phase(w)).toBe('running');
    expect(pidfileNames(w.pidfile)).toBe(String(process.pid));
    expect(s.aborts).toHaveLength(1);
    // a ready that comes too late is stale
    expect(() => s.makeReady()).toThrow(/made ready in state failed/);
  });

  test('a successor that cannot be started: rolled back at once', async () => {
    const w = await running({ count: 1 });
    w.successors.refuse = 'spawn /bin/sh EAGAIN';
    const replies = upgrade(w);
    expect(replies).toEqual([{ ok: false, error: 'upgrade failed: cannot start the successor: spawn /bin/sh EAGAIN' }]);
    expect(phase(w)).toBe('running');
    expect(pidfileNames(w.pidfile)).toBe(String(process.pid));
  });

  test('the pidfile cannot be renamed: rolled back at once, no successor started', async () => {
    const w = await running({ count: 1 });
    fs.rmSync(w.pidfile);
    const replies = upgrade(w);
    expect(replies).toEqual([{ ok: false, error: expect.stringMatching(/^upgrade failed: cannot rename the pidfile: ENOENT/) }]);
    expect(phase(w)).toBe('running');
    expect(w.successors.successors).toEqual([]);
    // nothing was renamed, so nothing is renamed back
    expect(gone(w.pidfile) && gone(oldbin(w))).toBe(true);
  });

  test("the sh that starts the successor killed by a late USR2 burst: started once more; a second such death rolls back", async () => {
    const { w, s, replies } = await upgrading();
    s.shKilled('SIGUSR2');
    await settle();
    expect(w.successors.successors).toHaveLength(2);
    expect(w.lines).toContainEqual('warn the sh that starts the successor was killed by SIGUSR2 before it could (a late signal burst): starting it again');
    expect(phase(w)).toBe('upgrading');
    expect(replies).toEqual([]);
    w.successors.last.shKilled('SIGUSR2');
    await settle();
    expect(w.successors.successors).toHaveLength(2);
    expect(replies).toEqual([{ ok: false, error: 'upgrade failed: the sh that starts the successor was killed by SIGUSR2 before it could' }]);
    expect(phase(w)).toBe('running');
  });

  test('the sh killed by another signal (not one of the burst): rolled back at once', async () => {
    const { w, s, replies } = await upgrading();
    s.shKilled('SIGKILL');
    await settle();
    expect(w.successors.successors).toHaveLength(1);
    expect(replies).toEqual([{ ok: false, error: 'upgrade failed: the sh that starts the successor was killed by SIGKILL before it could' }]);
    expect(phase(w)).toBe('running');
  });

  test('a successor that dies after its confirmation: no going back, `baton upgrade` answered as failed, the master drains and exits 0', async () => {
    const { w, s, replies } = await upgrading();
    await ready(s);
    s.exit();
    await settle();
    expect(replies).toEqual([{ ok: false, error: `upgrade failed: the successor (pid ${s.pid}) exited right after it was confirmed` }]);
    expect(phase(w)).toBe('stopping');
    expect(s.aborts).toEqual([]);
    expect(status(w).upgrade.last).toEqual(expect.objectContaining({ ok: false, successor: s.pid }));
    exitAll(w.launch.workers);
    expect(await exitCode(w)).toBe(0);
  });

  test('confirmed but silent for upgrade.timeoutMs (fake time): answered as failed, the master drains', async () => {
    const { w, s, replies } = await upgrading({ upgradeTimeoutMs: 3000 });
    await ready(s);
    w.clock.advance(3000);
    expect(replies).toEqual([{ ok: false, error: `upgrade failed: the successor (pid ${s.pid}) did not take over control.sock within 3000 ms of its confirmation` }]);
    expect(phase(w)).toBe('stopping');
    // its late `master` is stale
    s.takeOver();
    await settle();
    expect(replies).toHaveLength(1);
  });

  test('stop while upgrading: the upgrade rolled back and answered as failed, stopping, exit 0', async () => {
    const { w, s, replies } = await upgrading();
    s.hello();
    expect(stop(w)).toEqual([{ ok: true, pid: process.pid }]);
    expect(replies).toEqual([{ ok: false, error: 'upgrade failed: the master is stopping' }]);
    expect(phase(w)).toBe('stopping');
    expect(s.aborts.map((a) => a.reason)).toEqual(['the master is stopping']);
    expect(status(w).upgrade.last).toEqual(expect.objectContaining({ ok: false, error: 'the master is stopping' }));
    // a ready queued before the stop is stale
    expect(() => s.makeReady()).toThrow(/state failed/);
    exitAll(w.launch.workers);
    expect(await exitCode(w)).toBe(0);
    expect(gone(w.pidfile) && gone(oldbin(w)) && gone(controlSocketPath(w.runtimeDir))).toBe(true);
  });

  test('stop once handed over: stopping at once; `took-over` still answers `baton upgrade`', async () => {
    const { w, s, replies } = await upgrading();
    await ready(s);
    stop(w);
    expect(phase(w)).toBe('stopping');
    expect(s.aborts).toEqual([]);
    expect(replies).toEqual([]);
    s.takeOver();
    await settle();
    expect(replies).toEqual([expect.objectContaining({ ok: true, newPid: s.pid, manual: false })]);
    expect(phase(w)).toBe('stopping');
    exitAll(w.launch.workers);
    expect(await exitCode(w)).toBe(0);
    // the successor's, after the hand-over
    expect(fs.existsSync(controlSocketPath(w.runtimeDir))).toBe(true);
  });
});

describe("the predecessor's side, with a soak (reload.soakMs)", () => {
  test('ready: both serve, nothing handed over (no MAINPID=, no confirm, pidfile still .oldbin) until the soak is over; then the hand-over as ever', async () => {
    const { w, s, replies } = await upgrading({ soakMs: 10_000 });
    w.clock.advance(300);
    await ready(s);
    expect(phase(w)).toBe('upgrading');
    expect(s.confirms).toEqual([]);
    expect(status(w).soak).toEqual({ of: 'upgrade', generation: 2, endsAt: expect.any(String) });
    expect(await lastStatus(w)).toBe(`upgrading: successor pid ${s.pid} is ready and soaking for 10000 ms; generation 1: 1/1 workers ready`);
    w.clock.advance(9_999);
    await settle();
    expect(s.confirms).toEqual([]);
    expect(w.systemd!.with('MAINPID')).toEqual([]);
    expect(w.launch.of(1)[0].stops).toEqual([]);
    expect(replies).toEqual([]);
    w.clock.advance(1);
    await settle();
    expect(s.confirms).toEqual([3]);
    await until('MAINPID= to reach systemd', () => w.systemd!.with('MAINPID').length > 0);
    expect(status(w).soak).toBeUndefined();
    s.takeOver();
    await settle();
    expect(replies).toEqual([{ ok: true, oldPid: process.pid, newPid: s.pid, ms: 10_300, manual: false }]);
    expect(phase(w)).toBe('stopping');
    expect(w.launch.of(1)[0].stops).toEqual([['SIGTERM', 7000]]);
  });

  test("a successor's worker fails in the soak: rolled back (reverted), the successor aborted, the pidfile named back, this master's workers never stopped, systemd never told MAINPID=", async () => {
    const { w, s, replies } = await upgrading({ soakMs: 10_000 });
    await ready(s);
    w.clock.advance(400);
    s.workerFailedNow('worker 0 (pid 77) of generation 2 exited with code 1');
    await settle();
    const reason = `the successor (pid ${s.pid}) in its soak: its worker failed: worker 0 (pid 77) of generation 2 exited with code 1, 400 ms into the 10000 ms soak`;
    expect(replies).toEqual([{ ok: false, error: `upgrade rolled back: ${reason}` }]);
    expect(phase(w)).toBe('running');
    expect(s.aborts.map((a) => a.reason)).toEqual([reason]);
    expect(pidfileNames(w.pidfile)).toBe(String(process.pid));
    expect(gone(oldbin(w))).toBe(true);
    expect(status(w).upgrade.last).toEqual({ at: expect.any(String), ok: false, successor: s.pid, error: reason, reverted: true, ms: 400 });
    expect(status(w).soak).toBeUndefined();
    expect(w.lines).toContainEqual(`error upgrade rolled back, generation 1 keeps serving (it did throughout): ${reason}`);
    expect(w.launch.of(1)[0].stops).toEqual([]);
    expect(s.confirms).toEqual([]);
    expect((await toldSystemd(w)).filter((f) => f.has('MAINPID'))).toEqual([]);
    // the soak's timer is gone with it
    w.clock.advance(20_000);
    await settle();
    expect(phase(w)).toBe('running');
    expect(s.confirms).toEqual([]);
  });

  test('the successor exits in the soak: rolled back likewise', async () => {
    const { w, s, replies } = await upgrading({ soakMs: 10_000 });
    await ready(s);
    s.exit();
    await settle();
    expect(replies).toEqual([{ ok: false, error: expect.stringMatching(/^upgrade rolled back: the successor \(pid \d+\) in its soak: the successor \(pid \d+\) exited before it was ready, 0 ms into the 10000 ms soak$/) }]);
    expect(phase(w)).toBe('running');
  });

  test('manual mode does not soak: side-by-side at once; a worker failure there is the operator\'s to judge', async () => {
    const { w, s, replies } = await upgrading({ soakMs: 10_000, upgradeMode: 'manual' });
    await ready(s);
    expect(phase(w)).toBe('side-by-side');
    expect(replies).toEqual([expect.objectContaining({ ok: true, manual: true })]);
    s.workerFailedNow('worker 0 exited');
    await settle();
    expect(phase(w)).toBe('side-by-side');
  });
});

describe("the predecessor's side, manual mode", () => {
  const manual = { upgradeMode: 'manual' } as const;

  async function sideBySide(o: Options = {}) {
    const u = await upgrading({ ...manual, ...o });
    u.w.clock.advance(700);
    await ready(u.s);
    return u;
  }

  test('ready: side-by-side, `baton upgrade` answered (manual), no hand-over; QUIT hands over and stops', async () => {
    const { w, s, replies } = await sideBySide();
    expect(phase(w)).toBe('side-by-side');
    expect(replies).toEqual([{ ok: true, oldPid: process.pid, newPid: s.pid, ms: 700, manual: true }]);
    expect(s.confirms).toEqual([]);
    expect(status(w).upgrade).toEqual({ state: 'successor ready', successorPid: s.pid, last: null });
    expect(upgrade(w)).toEqual([{ ok: false, error: 'upgrade refused: an upgrade is already under way: its successor is ready beside this master (QUIT finishes it)' }]);
    // past the timeout: it stays beside us
    w.clock.advance(120_000);
    await settle();
    expect(phase(w)).toBe('side-by-side');
    w.clock.advance(300);
    expect(stop(w)).toEqual([{ ok: true, pid: process.pid, handedOverTo: s.pid }]);
    expect(s.confirms).toEqual([3]);
    await until('MAINPID= to reach systemd', () => w.systemd!.with('MAINPID', String(s.pid)).length > 0);
    expect(phase(w)).toBe('stopping');
    expect(status(w).upgrade.last).toEqual({ at: expect.any(String), ok: true, successor: s.pid, ms: 121_000 });
    expect(s.aborts).toEqual([]);
    exitAll(w.launch.workers);
    expect(await exitCode(w)).toBe(0);
    expect(fs.existsSync(controlSocketPath(w.runtimeDir))).toBe(true);
  });

  test('HUP in side-by-side: reloading, a generation numbered past the successor\'s, back to side-by-side; then the successor exits: rolled back to running', async () => {
    const { w, s } = await sideBySide();
    const replies = reload(w);
    expect(phase(w)).toBe('reloading');
    await until('generation 3 to be launched', () => w.launch.of(3).length === 1);
    spawnAll(w.launch.of(3));
    expect(replies).toEqual([expect.objectContaining({ ok: true, generation: 3 })]);
    expect(phase(w)).toBe('side-by-side');
    s.exit();
    await settle();
    expect(phase(w)).toBe('running');
    expect(status(w).generation).toBe(3);
    expect(pidfileNames(w.pidfile)).toBe(String(process.pid));
    expect(gone(oldbin(w))).toBe(true);
    expect(status(w).upgrade).toEqual({ state: 'none', last: expect.objectContaining({ ok: false, successor: s.pid, error: 'the successor exited' }) });
    expect(w.lines).toContainEqual(`warn the successor (pid ${s.pid}) exited before the upgrade was finished: rolled back`);
    // STATUS= says the phase it is in now
    await until('STATUS= of generation 3', () => w.systemd!.with('STATUS').some((m) => m.fields.get('STATUS')!.startsWith('generation 3')));
    expect(w.systemd!.with('STATUS').at(-1)!.fields.get('STATUS')).toBe('generation 3: 1/1 workers ready');
  });

  test('the successor exits during a HUP in side-by-side: the reload goes on and ends in running', async () => {
    const { w, s } = await sideBySide();
    reload(w);
    s.exit();
    await settle();
    expect(phase(w)).toBe('reloading');
    expect(pidfileNames(w.pidfile)).toBe(String(process.pid));
    await until('generation 3 to be launched', () => w.launch.of(3).length === 1);
    spawnAll(w.launch.of(3));
    expect(phase(w)).toBe('running');
  });

  test('WINCH in side-by-side, then the successor exits: no workers left, so a generation starts again (reloading)', async () => {
    const { w, s } = await sideBySide();
    w.master.post({ kind: 'winch' });
    expect(status(w).generation).toBeNull();
    exitAll(w.launch.of(1));
    s.exit();
    await settle();
    expect(phase(w)).toBe('reloading');
    await until('generation 3 to be launched', () => w.launch.of(3).length === 1);
    spawnAll(w.launch.of(3));
    expect(status(w)).toEqual(expect.objectContaining({ phase: 'running', generation: 3 }));
    expect(w.lines).toContainEqual(expect.stringMatching(/^info rollback: reloading/));
  });

  test('a stop during a HUP in side-by-side finishes the upgrade: the reload fails, the successor is confirmed', async () => {
    const { w, s } = await sideBySide();
    const replies = reload(w);
    stop(w);
    expect(replies).toEqual([{ ok: false, error: 'reload failed: the master is stopping' }]);
    expect(s.confirms).toEqual([3]);
    expect(phase(w)).toBe('stopping');
    expect(status(w).upgrade.last).toEqual(expect.objectContaining({ ok: true }));
  });
});

/** The test's end of a successor's channel: the lines the successor sent, and a way to answer. */
interface PredecessorEnd {
  fd: number;
  got: Array<{ t: string; [k: string]: unknown }>;
  send(m: object): void;
  close(): void;
  closed: boolean;
}

/** A connected unix stream socket: the successor's end as an fd (as a predecessor passes it), the test's as a socket. */
async function channel(dir: string): Promise<PredecessorEnd> {
  const file = path.join(dir, 'channel.sock');
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(file, r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect(file);
  await new Promise<void>((r) => client.once('connect', r));
  const fd = native.dupCloexec(socketFd(client));
  client.destroy();
  const ours = await accepted;
  server.close();
  const end: PredecessorEnd = {
    fd,
    got: [],
    send: (m) => void ours.write(`${JSON.stringify(m)}\n`),
    close: () => ours.destroy(),
    closed: false,
  };
  let buf = '';
  ours.on('data', (d) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      end.got.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  });
  ours.on('close', () => (end.closed = true));
  ends.push(end);
  return end;
}

const ends: PredecessorEnd[] = [];
afterEach(() => ends.splice(0).forEach((e) => e.close()));

describe("the successor's side", () => {
  /** A successor master, its generation 5 ready: unconfirmed. */
  async function unconfirmed(): Promise<{ w: World; p: PredecessorEnd }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-chan-'));
    const p = await channel(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    const w = await startMaster({ count: 1, systemd: true, upgrade: { channelFd: p.fd, nextGeneration: 5, sources: [] } });
    spawnAll(w.launch.of(5));
    await until('ready to reach the predecessor', () => p.got.some((m) => m.t === 'ready'));
    return { w, p };
  }

  test('starts beside the predecessor: says hello, its files, ready; unconfirmed, quiet towards systemd, refuses HUP and USR2; confirmed: running, control.sock its own, READY=1, says master', async () => {
    const { w, p } = await unconfirmed();
    const own = `${controlSocketPath(w.runtimeDir)}.${process.pid}`;
    expect(p.got.map((m) => m.t)).toEqual(['hello', 'files', 'worker', 'ready']);
    expect(p.got[1]).toEqual({ t: 'files', sockets: [own], pidfile: w.pidfile });
    expect(p.got[3]).toEqual({ t: 'ready', generation: 5 });
    expect(phase(w)).toBe('unconfirmed');
    expect(status(w).upgrade.state).toBe('unconfirmed successor');
    expect(pidfileNames(w.pidfile)).toBe(String(process.pid));
    expect(fs.statSync(own).isSocket()).toBe(true);
    expect(gone(controlSocketPath(w.runtimeDir))).toBe(true);
    const why = 'this master is a successor its predecessor has not confirmed yet';
    expect(reload(w)).toEqual([{ ok: false, error: `reload refused: ${why}` }]);
    expect(upgrade(w)).toEqual([{ ok: false, error: `upgrade refused: ${why}` }]);
    p.send({ t: 'confirm', nextGeneration: 8 });
    await until('master to reach the predecessor', () => p.got.some((m) => m.t === 'master'));
    expect(phase(w)).toBe('running');
    expect(fs.statSync(controlSocketPath(w.runtimeDir)).isSocket()).toBe(true);
    expect(gone(own)).toBe(true);
    await until('READY=1 to reach systemd', () => w.systemd!.with('READY').length > 0);
    // nothing was said before the confirmation (muted): READY=1 is the first word
    expect([...w.systemd!.messages[0].fields.keys()]).toContain('READY');
    await until('the channel to close', () => p.closed);
    // numbered past the predecessor's
    reload(w);
    await until('generation 8 to be launched', () => w.launch.of(8).length === 1);
  });

  test('aborted by its predecessor while unconfirmed: stopping, its workers stopped, exit 0, its files gone', async () => {
    const { w, p } = await unconfirmed();
    p.send({ t: 'abort', reason: 'the master is stopping' });
    await until('stopping', () => phase(w) === 'stopping');
    expect(w.lines).toContainEqual(expect.stringMatching(/the predecessor aborted the upgrade: the master is stopping/));
    expect(w.launch.of(5)[0].stops).toEqual([['SIGTERM', 7000]]);
    exitAll(w.launch.workers);
    expect(await exitCode(w)).toBe(0);
    expect(gone(w.pidfile) && gone(`${controlSocketPath(w.runtimeDir)}.${process.pid}`)).toBe(true);
  });

  test('stopped while unconfirmed, then confirmed (a stop reached both masters): it takes over control.sock and says master, but stays stopping and tells systemd nothing', async () => {
    const { w, p } = await unconfirmed();
    stop(w);
    expect(phase(w)).toBe('stopping');
    p.send({ t: 'confirm', nextGeneration: 8 });
    await until('master to reach the predecessor', () => p.got.some((m) => m.t === 'master'));
    expect(phase(w)).toBe('stopping');
    expect(fs.statSync(controlSocketPath(w.runtimeDir)).isSocket()).toBe(true);
    expect(await toldSystemd(w)).toEqual([]);
    exitAll(w.launch.workers);
    expect(await exitCode(w)).toBe(0);
  });

  test("unconfirmed, a worker crashes or is over workers.maxMemory: the predecessor hears it (worker-failed), the successor serves on", async () => {
    const { w, p } = await unconfirmed();
    const first = w.launch.of(5)[0];
    first.exit({ code: 1, signal: null });
    await until('worker-failed to reach the predecessor', () => p.got.some((m) => m.t === 'worker-failed'));
    expect(p.got.find((m) => m.t === 'worker-failed')).toEqual({ t: 'worker-failed', reason: expect.stringMatching(/^worker 0 \(pid \d+\) of generation 5 exited with status 1/) });
    expect(phase(w)).toBe('unconfirmed');
  });

  test('the predecessor goes away before confirming: aborted, stopping', async () => {
    const { w, p } = await unconfirmed();
    p.close();
    await until('stopping', () => phase(w) === 'stopping');
    expect(w.lines).toContainEqual(expect.stringMatching(/the predecessor went away before confirming the upgrade/));
  });
});
