// systemd's file descriptor store, with a fake systemd that receives SCM_RIGHTS for real
// (fixtures/fake-fdstore.py: Node cannot) and plays systemd's restart: a new master gets the
// stored sockets at fd 3 onwards, named by FDNAME.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { request } from '../../src/control/client';
import { controlSocketPath, type StatusReply } from '../../src/contract/control';
import { flowing, startLoad } from '../helpers/load';
import { BATON, FIXTURES, batonAsync, childrenOf, cleanup, get, getUnix, isAlive, nodeWorker, portOf, ready, sleep, startMaster, tmpdir, waitFor, workerPids, writeConfig, type Master } from '../helpers/proc';

interface FdInfo {
  ino: number;
  addr: string;
}
type Event =
  | { t: 'msg'; fields: Record<string, string>; fds: FdInfo[] }
  | { t: 'store'; fds: Array<FdInfo & { name: string }> }
  | { t: 'started'; pid: number };

class FakeStore {
  readonly socket: string;
  readonly proc: ChildProcess;
  readonly events: Event[] = [];
  /** What the masters it started wrote (their stdout and stderr). */
  private out = '';
  private readonly started: number[] = [];

  constructor(dir: string) {
    this.socket = path.join(dir, 'notify.sock');
    this.proc = spawn('python3', [path.join(FIXTURES, 'fake-fdstore.py'), this.socket], { stdio: ['pipe', 'pipe', 'pipe'] });
    let buf = '';
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const lines = (buf + d).split('\n');
      buf = lines.pop()!;
      for (const l of lines) this.events.push(JSON.parse(l));
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => (this.out += d));
  }

  ready(): Promise<boolean> {
    return waitFor('the fake notify socket', () => fs.existsSync(this.socket));
  }

  messages(): Array<Extract<Event, { t: 'msg' }>> {
    return this.events.filter((e): e is Extract<Event, { t: 'msg' }> => e.t === 'msg');
  }

  /** The FDSTORE=1 / FDSTOREREMOVE=1 messages, as "store http" / "remove http". */
  storeMessages(): string[] {
    return this.messages().flatMap((m) => (m.fields.FDSTORE === '1' ? [`store ${m.fields.FDNAME}`] : m.fields.FDSTOREREMOVE === '1' ? [`remove ${m.fields.FDNAME}`] : []));
  }

  waitForMessage(what: string, pred: (f: Record<string, string>) => boolean): Promise<Extract<Event, { t: 'msg' }>> {
    return waitFor(what, () => this.messages().find((m) => pred(m.fields)));
  }

  private async ask<T extends Event['t']>(cmd: Record<string, unknown>, t: T): Promise<Extract<Event, { t: T }>> {
    const n = this.events.filter((e) => e.t === t).length;
    this.proc.stdin!.write(JSON.stringify(cmd) + '\n');
    return waitFor(`'${t}' from the fake systemd`, () => this.events.filter((e): e is Extract<Event, { t: T }> => e.t === t)[n]);
  }

  async store(): Promise<Array<FdInfo & { name: string }>> {
    return (await this.ask({ cmd: 'store' }, 'store')).fds;
  }

  /** Starts `baton run -c cfg` as systemd would after a restart: the stored fds in LISTEN_FDS. */
  async startMaster(cfg: string, env: Record<string, string> = {}, dup = false): Promise<number> {
    const { pid } = await this.ask({ cmd: 'start', argv: [process.execPath, BATON, 'run', '-c', cfg], env, dup }, 'started');
    this.started.push(pid);
    return pid;
  }

  output(): string {
    return this.out;
  }

  /** SIGKILL to the masters it started and their workers' process groups; then it exits. */
  async close(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    for (const pid of this.started) {
      for (const w of childrenOf(pid)) kill(-w, 'SIGKILL');
      kill(pid, 'SIGKILL');
    }
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.stdin!.end();
    await exited;
  }
}

function kill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

async function statusAt(runtimeDir: string): Promise<StatusReply> {
  const r = await request(controlSocketPath(runtimeDir), { cmd: 'status' });
  if (!r.ok) throw new Error(r.error);
  return r;
}

/** The status of master `pid` once it serves (a master another process started). */
function serving(runtimeDir: string, pid: number): Promise<StatusReply> {
  const now = () => statusAt(runtimeDir).then((s) => (s.pid === pid && s.phase === 'running' ? s : undefined), () => undefined);
  return waitFor(`master ${pid} to serve`, now);
}

/** The socket inode behind one of a process's fds (/proc/PID/fd/N -> socket:[INO]). */
function inodeOf(pid: number, fd: number): number {
  return Number(/^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`))![1]);
}

function listener(s: StatusReply, name: string) {
  const l = s.listeners.find((x) => x.name === name);
  if (!l) throw new Error(`no listener ${name}: ${JSON.stringify(s.listeners)}`);
  return l;
}

describe("systemd's FD store (FDSTORE=1, a fake systemd receiving the fds)", () => {
  let m: Master | undefined;
  let sd: FakeStore | undefined;
  afterEach(async () => {
    await cleanup(m);
    m = undefined;
    await sd?.close();
    sd = undefined;
  });

  const setup = async (listeners: unknown[], env: Record<string, string>, extra: Record<string, unknown> = {}) => {
    const dir = tmpdir();
    sd = new FakeStore(dir);
    await sd.ready();
    const cfg = writeConfig(dir, { name: 'store', listeners, workers: { command: nodeWorker(), count: 1 }, ...extra });
    m = startMaster(cfg, { env: { NOTIFY_SOCKET: sd.socket, ...env } });
    return { dir, cfg };
  };

  test('each socket baton binds goes to the store under its name, the very socket; a reload removes a dropped or replaced one, then stores its replacement', async () => {
    const { dir, cfg } = await setup(
      [
        { name: 'http', tcp: '127.0.0.1:0' },
        { name: 'admin', unix: 'admin.sock' },
        { name: 'extra', tcp: '127.0.0.1:0' },
      ],
      { FDSTORE: '16' },
    );
    const s = await ready(m!);
    await sd!.waitForMessage('READY=1', (f) => f.READY === '1');
    for (const name of ['http', 'admin', 'extra']) {
      const msg = sd!.messages().find((x) => x.fields.FDSTORE === '1' && x.fields.FDNAME === name)!;
      const l = listener(s, name);
      // one message per listener, its one fd, and that fd is the master's listening socket
      expect(msg.fds).toEqual([{ ino: inodeOf(m!.pid, l.fds[0]), addr: l.addresses[0] }]);
    }
    expect(sd!.storeMessages()).toEqual(['store http', 'store admin', 'store extra']);
    // the workers are not told of the store: it is the master's
    const worker = workerPids(s)[0];
    expect(fs.readFileSync(`/proc/${worker}/environ`, 'utf8').split('\0').filter((e) => e.startsWith('FDSTORE='))).toEqual([]);

    // reload: http kept, admin moved to another file (a new socket), extra dropped
    const httpIno = inodeOf(m!.pid, listener(s, 'http').fds[0]);
    const c = JSON.parse(fs.readFileSync(cfg, 'utf8'));
    c.listeners = [{ name: 'http', tcp: '127.0.0.1:0' }, { name: 'admin', unix: 'admin2.sock' }];
    fs.writeFileSync(cfg, JSON.stringify(c));
    m!.proc.kill('SIGHUP');
    await m!.waitForOutput(/reload done: generation 2/);
    const after = await m!.status();
    expect(sd!.storeMessages().slice(3)).toEqual(['remove admin', 'remove extra', 'store admin']);
    const stored = await sd!.store();
    expect(stored.map((e) => [e.name, e.ino, e.addr]).sort()).toEqual(
      [
        ['admin', inodeOf(m!.pid, listener(after, 'admin').fds[0]), path.join(dir, 'admin2.sock')],
        ['http', httpIno, listener(s, 'http').addresses[0]],
      ].sort(),
    );
  });

  test('off: nothing stored without $FDSTORE, nor with fdStore: false; fdStore: true stores without $FDSTORE (systemd < 254)', async () => {
    for (const [env, extra, stores] of [
      [{}, {}, false],
      [{ FDSTORE: '16' }, { fdStore: false }, false],
      [{}, { fdStore: true }, true],
    ] as const) {
      await setup([{ name: 'http', tcp: '127.0.0.1:0' }], env, extra);
      await ready(m!);
      await sd!.waitForMessage('READY=1', (f) => f.READY === '1');
      expect([JSON.stringify(env), JSON.stringify(extra), sd!.storeMessages()]).toEqual([JSON.stringify(env), JSON.stringify(extra), stores ? ['store http'] : []]);
      await cleanup(m);
      await sd!.close();
      sd = undefined;
    }
  });

  test('a restart (stop, then start with the stored fds) and a crash (SIGKILL, workers drain on SIGTERM) refuse no connection and cut no request: the stored socket is taken back by name', async () => {
    const { cfg } = await setup([{ name: 'http', tcp: '127.0.0.1:0' }], { FDSTORE: '16' });
    const s1 = await ready(m!);
    const port = portOf(s1);
    const ino = inodeOf(m!.pid, listener(s1, 'http').fds[0]);
    await sd!.waitForMessage('FDSTORE=1', (f) => f.FDSTORE === '1');
    const load = startLoad(port, 2, 2);
    try {
      await flowing(load);

      // restart: the master stops (its workers drain), and only then does the next one start
      m!.proc.kill('SIGTERM');
      await m!.exited;
      const pid2 = await sd!.startMaster(cfg, { FDSTORE: '16' });
      const s2 = await serving(m!.runtimeDir, pid2);
      const l2 = listener(s2, 'http');
      expect([l2.source, l2.addresses, inodeOf(pid2, l2.fds[0])]).toEqual(['config', [`127.0.0.1:${port}`], ino]);
      await sleep(300);
      expect(sd!.output()).toMatch(new RegExp(`listening: http=127.0.0.1:${port}`));

      // crash: SIGKILL to the master; systemd (KillMode=control-group) SIGTERMs the workers,
      // which finish a request in flight while the next master is started
      const slow = get(port, '/?delay=1500');
      await sleep(300);
      const workers2 = workerPids(s2);
      kill(pid2, 'SIGKILL');
      for (const w of workers2) kill(w, 'SIGTERM');
      await waitFor('the old workers to exit', () => workers2.every((w) => !isAlive(w)), 10000);
      const pid3 = await sd!.startMaster(cfg, { FDSTORE: '16' });
      await serving(m!.runtimeDir, pid3);
      const answer = await slow;
      expect([answer.status, JSON.parse(answer.body).pid]).toEqual([200, workers2[0]]);
      await flowing(load);
    } finally {
      await load.finish();
    }
    // the stored socket was taken back, not stored again under another copy
    expect((await sd!.store()).map((e) => [e.name, e.ino])).toEqual([['http', ino]]);
  });

  test('an upgrade\'s successor stores nothing until confirmed; then it removes what its config dropped and stores its sockets', async () => {
    const { cfg } = await setup(
      [
        { name: 'http', tcp: '127.0.0.1:0' },
        { name: 'extra', tcp: '127.0.0.1:0' },
      ],
      { FDSTORE: '16' },
    );
    const s1 = await ready(m!);
    await sd!.waitForMessage('READY=1', (f) => f.READY === '1');
    const ino = inodeOf(m!.pid, listener(s1, 'http').fds[0]);
    const c = JSON.parse(fs.readFileSync(cfg, 'utf8'));
    c.listeners = [{ name: 'http', tcp: '127.0.0.1:0' }];
    fs.writeFileSync(cfg, JSON.stringify(c));
    const before = sd!.messages().length;
    let successor = 0;
    try {
      const up = await batonAsync(['upgrade', '-c', cfg]);
      expect(up.code).toBe(0);
      successor = (await m!.status()).pid;
      expect(successor).not.toBe(m!.pid);
      const after = sd!.messages().slice(before);
      const mainpid = after.findIndex((x) => x.fields.MAINPID === String(successor));
      const stores = after.flatMap((x, i) => (x.fields.FDSTORE || x.fields.FDSTOREREMOVE ? [i] : []));
      // nothing from the unconfirmed successor; after MAINPID= (the confirmation): remove, then store
      expect(mainpid).toBeGreaterThanOrEqual(0);
      expect(stores.every((i) => i > mainpid)).toBe(true);
      expect(sd!.storeMessages().slice(2)).toEqual(['remove extra', 'store http']);
      expect((await sd!.store()).map((e) => [e.name, e.ino])).toEqual([['http', ino]]);
    } finally {
      if (successor) await batonAsync(['stop', '-c', cfg]);
    }
  });

  test('a stored unix socket keeps its file when the master stops and is taken back; one whose file is gone (RuntimeDirectory= emptied) is bound anew and replaced in the store', async () => {
    const { dir, cfg } = await setup([{ name: 'admin', unix: 'admin.sock' }], { FDSTORE: '16' });
    const file = path.join(dir, 'admin.sock');
    const s1 = await ready(m!);
    await sd!.waitForMessage('FDSTORE=1', (f) => f.FDSTORE === '1');
    const ino = inodeOf(m!.pid, listener(s1, 'admin').fds[0]);
    m!.proc.kill('SIGTERM');
    await m!.exited;
    expect(fs.existsSync(file)).toBe(true);
    const pid2 = await sd!.startMaster(cfg, { FDSTORE: '16' });
    const s2 = await serving(m!.runtimeDir, pid2);
    expect([listener(s2, 'admin').source, inodeOf(pid2, listener(s2, 'admin').fds[0])]).toEqual(['config', ino]);
    expect((await getUnix(file)).status).toBe(200);

    kill(pid2, 'SIGTERM');
    await waitFor('the second master to exit', () => !isAlive(pid2));
    fs.rmSync(file);
    const pid3 = await sd!.startMaster(cfg, { FDSTORE: '16' });
    const s3 = await serving(m!.runtimeDir, pid3);
    const ino3 = inodeOf(pid3, listener(s3, 'admin').fds[0]);
    expect(ino3).not.toBe(ino);
    expect((await getUnix(file)).status).toBe(200);
    expect(sd!.output()).toMatch(/inherited socket 'admin' is not at the configured address: closing it/);
    expect(sd!.storeMessages()).toEqual(['store admin', 'remove admin', 'store admin']);
    expect((await sd!.store()).map((e) => [e.name, e.ino])).toEqual([['admin', ino3]]);
  });

  test('a restart whose config renames a stored listener or widens its address (127.0.0.1:P, then *:P) serves: the stored socket leaves the store and is closed before the new one is bound', async () => {
    const { cfg } = await setup([{ name: 'http', tcp: '127.0.0.1:0' }], { FDSTORE: '16' });
    const port = portOf(await ready(m!));
    await sd!.waitForMessage('FDSTORE=1', (f) => f.FDSTORE === '1');
    await cleanup(m);
    const restart = async (listeners: unknown[]) => {
      const c = JSON.parse(fs.readFileSync(cfg, 'utf8'));
      c.listeners = listeners;
      fs.writeFileSync(cfg, JSON.stringify(c));
      const pid = await sd!.startMaster(cfg, { FDSTORE: '16' });
      const s = await serving(m!.runtimeDir, pid);
      expect((await get(port)).status).toBe(200);
      return { pid, s };
    };
    // the stored 'http' comes back under a name the config no longer has, at the address 'web' asks for
    const r2 = await restart([{ name: 'web', tcp: `127.0.0.1:${port}` }]);
    expect(listener(r2.s, 'web').addresses).toEqual([`127.0.0.1:${port}`]);
    kill(r2.pid, 'SIGTERM');
    await waitFor('the second master to exit', () => !isAlive(r2.pid));
    const r3 = await restart([{ name: 'web', tcp: `0.0.0.0:${port}` }]);
    expect(listener(r3.s, 'web').addresses).toEqual([`0.0.0.0:${port}`]);
    expect(sd!.output()).toMatch(/inherited socket 'web' is not at the configured address: closing it/);
    expect(sd!.storeMessages()).toEqual(['store http', 'remove http', 'store web', 'remove web', 'store web']);
    expect((await sd!.store()).map((e) => [e.name, e.ino])).toEqual([['web', inodeOf(r3.pid, listener(r3.s, 'web').fds[0])]]);
  });

  test('a restart whose config changes a bind-time option (freeBind) of a stored socket binds it anew, with a warning; a reload still refuses it', async () => {
    const { cfg } = await setup([{ name: 'http', tcp: '127.0.0.1:0' }], { FDSTORE: '16' });
    const s1 = await ready(m!);
    const port = portOf(s1);
    const ino = inodeOf(m!.pid, listener(s1, 'http').fds[0]);
    await sd!.waitForMessage('FDSTORE=1', (f) => f.FDSTORE === '1');
    await cleanup(m);
    const c = JSON.parse(fs.readFileSync(cfg, 'utf8'));
    c.listeners = [{ name: 'http', tcp: `127.0.0.1:${port}`, freeBind: true }];
    fs.writeFileSync(cfg, JSON.stringify(c));
    const pid2 = await sd!.startMaster(cfg, { FDSTORE: '16' });
    const s2 = await serving(m!.runtimeDir, pid2);
    const l2 = listener(s2, 'http');
    expect([l2.addresses, l2.options?.[0]?.freeBind]).toEqual([[`127.0.0.1:${port}`], true]);
    expect(inodeOf(pid2, l2.fds[0])).not.toBe(ino);
    expect((await get(port)).status).toBe(200);
    expect(sd!.output()).toMatch(/inherited socket 'http' differs in what acts only when bound \(freeBind is true in the config but false on the socket held\): bound anew, connections queued in the old socket are reset/);
    expect(sd!.storeMessages()).toEqual(['store http', 'remove http', 'store http']);

    // a reload: the running master serves the socket, so the bind-time change is refused
    c.listeners[0].freeBind = false;
    fs.writeFileSync(cfg, JSON.stringify(c));
    const r = await batonAsync(['reload', '-c', cfg]);
    expect([r.code === 0, r.stderr]).toEqual([false, expect.stringMatching(/freeBind is false in the config but true on the socket held: this acts only when a socket is bound/)]);
  });

  test('fdStore: false after a run that stored: the socket systemd passes back is taken as baton\'s and removed from the store', async () => {
    const { cfg } = await setup([{ name: 'http', tcp: '127.0.0.1:0' }], { FDSTORE: '16' });
    const s1 = await ready(m!);
    const ino = inodeOf(m!.pid, listener(s1, 'http').fds[0]);
    await sd!.waitForMessage('FDSTORE=1', (f) => f.FDSTORE === '1');
    await cleanup(m);
    const c = JSON.parse(fs.readFileSync(cfg, 'utf8'));
    c.fdStore = false;
    fs.writeFileSync(cfg, JSON.stringify(c));
    const pid2 = await sd!.startMaster(cfg, { FDSTORE: '16' });
    const s2 = await serving(m!.runtimeDir, pid2);
    const l2 = listener(s2, 'http');
    expect([l2.source, inodeOf(pid2, l2.fds[0])]).toEqual(['config', ino]);
    expect(sd!.storeMessages()).toEqual(['store http', 'remove http']);
    expect(await sd!.store()).toEqual([]);
  });

  test('more sockets to store than $FDSTORE (FileDescriptorStoreMax=) allows: a warning (systemd drops the rest silently)', async () => {
    await setup(
      [
        { name: 'a', tcp: '127.0.0.1:0' },
        { name: 'b', tcp: '127.0.0.1:0' },
      ],
      { FDSTORE: '1' },
    );
    await ready(m!);
    await m!.waitForOutput(/2 socket\(s\) to store but FileDescriptorStoreMax= is 1: systemd drops the rest/);
  });

  test('the same socket passed twice (a .socket unit\'s that also went into the store) is served once, the duplicate closed', async () => {
    const { cfg } = await setup([{ name: 'http', tcp: '127.0.0.1:0' }], { FDSTORE: '16' });
    const s1 = await ready(m!);
    await sd!.waitForMessage('FDSTORE=1', (f) => f.FDSTORE === '1');
    await cleanup(m);
    const pid2 = await sd!.startMaster(cfg, { FDSTORE: '16' }, true);
    const s2 = await serving(m!.runtimeDir, pid2);
    const l = listener(s2, 'http');
    expect([l.source, l.fds, l.addresses]).toEqual(['config', [3], listener(s1, 'http').addresses]);
    expect(sd!.output()).toMatch(/inherited fd 4 \(name 'http'\) is the same socket as fd 3 \(name 'http'\): closing the duplicate/);
    expect((await get(portOf(s2))).status).toBe(200);
  });
});
