// A master (src/master/master.ts) on the fake world (fake-world.ts): a fake clock, a fake
// Launch and a fake LaunchSuccessor, a real config file, control socket, notify receiver and
// (in some tests) a real TCP listener and a stand-in for systemd's notify socket, all in this
// process. Flows are driven by post()ing events and firing the fakes' steps; the phase is read
// from status replies. A test file calls useFakeMasters() once: each master is stopped and its
// folder removed after its test.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/load';
import type { ControlReply, StatusReply } from '../../src/contract/control';
import type { UpgradeEnv } from '../../src/contract/upgrade-env';
import type { Logger } from '../../src/log/logger';
import type { MasterEvent } from '../../src/master/events';
import { Master } from '../../src/master/master';
import type { Sampler } from '../../src/master/status';
import { FakeClock, FakeLaunch, FakeLaunchSuccessor, FakeMemory, FakeRandom, type FakeWorker } from './fake-world';
import { FakeSystemd } from './fake-systemd';

/** The signals the master listens to (src/master/inputs.ts SIGNALS): its handlers are removed after each test. */
const MASTER_SIGNALS = ['SIGHUP', 'SIGUSR2', 'SIGTERM', 'SIGQUIT', 'SIGINT', 'SIGWINCH', 'SIGUSR1', 'SIGTTIN', 'SIGTTOU'] as const;

export interface World {
  dir: string;
  configFile: string;
  runtimeDir: string;
  pidfile: string;
  master: Master;
  clock: FakeClock;
  launch: FakeLaunch;
  successors: FakeLaunchSuccessor;
  memory: FakeMemory;
  random: FakeRandom;
  /** With `systemd: true`: what the master told systemd. */
  systemd?: FakeSystemd;
  lines: string[];
  exited: Promise<number>;
  code?: number;
  signalHandlers: Map<string, Array<(...a: unknown[]) => void>>;
  /** Full garbage collections the master asked for (its collectGarbage). */
  collections: number;
}

export interface Options {
  ready?: 'spawn' | 'notify';
  count?: number;
  tcp?: boolean;
  readyTimeoutMs?: number;
  firstPid?: number;
  /** Instead of `tcp`: these TCP listeners. */
  listeners?: Array<{ name: string; tcp: string }>;
  upgradeMode?: 'auto' | 'manual';
  upgradeTimeoutMs?: number;
  /** NOTIFY_SOCKET set to a FakeSystemd of the world's. */
  systemd?: boolean;
  /** A successor master: what its predecessor gave it. */
  upgrade?: UpgradeEnv;
  /** reload.soakMs, reload.maxDraining. */
  soakMs?: number;
  maxDraining?: number;
  /** More reload keys (strategy, surge). */
  reload?: Record<string, unknown>;
  /** More workers keys (maxAgeMs, maxMemory, ...). */
  workers?: Record<string, unknown>;
  /** What status reads of the workers' and the master's memory and CPU (default: nothing, as the fake pids have no /proc). */
  sampler?: Sampler;
}

const worlds: World[] = [];

export function writeConfig(w: { configFile: string; runtimeDir: string; pidfile: string }, o: Options): void {
  const cfg = {
    name: 'loop-test',
    runtimeDir: w.runtimeDir,
    pidfile: w.pidfile,
    listeners: o.listeners ?? (o.tcp ? [{ name: 'http', tcp: '127.0.0.1:0' }] : []),
    workers: {
      command: ['/bin/true'],
      count: o.count ?? 2,
      ready: o.ready ?? 'spawn',
      readyTimeoutMs: o.readyTimeoutMs ?? 5000,
      stopSignal: 'SIGTERM',
      stopTimeoutMs: 7000,
      ...o.workers,
    },
    upgrade: { mode: o.upgradeMode ?? 'auto', timeoutMs: o.upgradeTimeoutMs ?? 60000 },
    reload: { ...(o.soakMs !== undefined ? { soakMs: o.soakMs } : {}), ...(o.maxDraining !== undefined ? { maxDraining: o.maxDraining } : {}), ...o.reload },
  };
  fs.writeFileSync(w.configFile, JSON.stringify(cfg));
}

/** A master on a fresh config in a fresh folder, started; resolves once its first generation is launched. */
export async function startMaster(o: Options = {}): Promise<World> {
  const w = createMaster(o);
  await until('the first generation to be launched', () => w.launch.of(o.upgrade?.nextGeneration ?? 1).length === (o.count ?? 2));
  return w;
}

/** A master on a fresh config in a fresh folder, start() called. */
export function createMaster(o: Options): World {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-loop-'));
  const files = { configFile: path.join(dir, 'baton.json'), runtimeDir: path.join(dir, 'run'), pidfile: path.join(dir, 'run', 'baton.pid') };
  const signalHandlers = new Map(MASTER_SIGNALS.map((s) => [s as string, process.listeners(s) as Array<(...a: unknown[]) => void>]));
  const lines: string[] = [];
  const at = (level: string) => (m: string) => void lines.push(`${level} ${m}`);
  const logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    reopen: () => void lines.push('reopened'),
    sinkStatus: () => ({ target: 'test', dropped: 0, failing: null, lastError: null }),
    dropped: () => undefined,
  } as unknown as Logger;
  const clock = new FakeClock();
  const launch = new FakeLaunch();
  const successors = new FakeLaunchSuccessor();
  const memory = new FakeMemory();
  const random = new FakeRandom();
  if (o.firstPid !== undefined) launch.nextPid = o.firstPid;
  // registered before anything that can fail, so afterEach cleans up whatever came to be
  const w = { dir, ...files, clock, launch, successors, memory, random, lines, signalHandlers, collections: 0 } as World;
  worlds.push(w);
  writeConfig(w, o);
  if (o.systemd) {
    w.systemd = new FakeSystemd(dir);
    // the master reads it and takes it out of the environment (its workers must not see it)
    process.env.NOTIFY_SOCKET = w.systemd.socket;
  }
  try {
    w.master = new Master({
      config: loadConfig(w.configFile),
      logger,
      inherited: [],
      upgrade: o.upgrade ?? null,
      program: [process.execPath],
      args: [],
      cwd: dir,
      clock,
      launch: launch.fn,
      launchSuccessor: successors.fn,
      // one sampler, as the real master has: the test's own, or the memory it sets (w.memory)
      sampler: o.sampler ?? memory.sampler,
      random: random.fn,
      collectGarbage: () => void w.collections++,
    });
  } finally {
    delete process.env.NOTIFY_SOCKET;
  }
  w.exited = w.master.start().then((code) => (w.code = code));
  return w;
}

/** Polls `cond` between turns of the event loop (sockets, promises) for up to 5 s. */
export async function until(what: string, cond: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Lets the promises settled so far run their callbacks (a successor's, an abort's). */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/** A status request through the loop; answered at once when no handler is running. */
export function status(w: World): StatusReply {
  let got: ControlReply | undefined;
  w.master.post({ kind: 'status', reply: (r) => (got = r) });
  if (!got || !got.ok) throw new Error(`no status reply: ${JSON.stringify(got)}`);
  return got as StatusReply;
}

export const phase = (w: World) => status(w).phase;

/** Posts a request; its replies (a reload's comes later) land in the array returned. */
export function ask(w: World, e: Exclude<MasterEvent, { kind: 'status' }> & { reply?: unknown }): ControlReply[] {
  const replies: ControlReply[] = [];
  w.master.post({ ...e, reply: (r: ControlReply) => void replies.push(r) } as MasterEvent);
  return replies;
}

export const reload = (w: World) => ask(w, { kind: 'reload', source: 'test' });
export const upgrade = (w: World) => ask(w, { kind: 'upgrade', source: 'test' });
export const stop = (w: World, fast = false) => ask(w, { kind: 'stop', source: fast ? 'SIGINT' : 'SIGTERM', fast });

export function spawnAll(ws: FakeWorker[]): void {
  ws.forEach((x) => x.spawn());
}

export function exitAll(ws: FakeWorker[]): void {
  ws.filter((x) => !x.exited).forEach((x) => x.exit({ code: null, signal: 'SIGTERM' }));
}

/** A master serving generation 1. */
export async function running(o: Options = {}): Promise<World> {
  const w = await startMaster(o);
  spawnAll(w.launch.of(1));
  expect(phase(w)).toBe('running');
  return w;
}

export async function exitCode(w: World): Promise<number> {
  await until('start() to resolve', () => w.code !== undefined);
  return w.code!;
}

/** The stop requests a worker got, each kind once (the pool may repeat one; the process sends a signal once). */
export function distinct(stops: Array<[string, number]>): Array<[string, number]> {
  return stops.filter(([sig, ms], i) => stops.findIndex(([s2, m2]) => s2 === sig && m2 === ms) === i);
}

/** What connecting to a TCP port on 127.0.0.1 gives: 'connected' or the error code. */
export function connect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => (c.destroy(), resolve('connected')));
    c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

export const portOf = (w: World, i = 0) => Number(status(w).listeners[i].addresses[0].split(':')[1]);

const servers: net.Server[] = [];

/** A TCP port something else holds, for the test's length. */
export async function takenPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  servers.push(srv);
  return (srv.address() as net.AddressInfo).port;
}

export function gone(file: string): boolean {
  return !fs.existsSync(file);
}

const internalErrors = (w: World) => w.lines.filter((l) => l.includes('internal error'));

/** Registers the clean-up: after each test every master stopped, its folder removed, no internal error logged; after all, no signal handler left. */
export function useFakeMasters(): void {
  const listenersAtStart = MASTER_SIGNALS.map((s) => process.listenerCount(s));
  afterAll(() => expect(MASTER_SIGNALS.map((s) => process.listenerCount(s))).toEqual(listenersAtStart));
  afterEach(cleanUp);
}

async function cleanUp(): Promise<void> {
  const problems: string[] = [];
  for (const srv of servers.splice(0)) srv.close();
  for (const w of worlds.splice(0)) {
    problems.push(...internalErrors(w));
    try {
      if (w.master && w.code === undefined) {
        w.master.post({ kind: 'stop', source: 'test clean-up', fast: true });
        exitAll(w.launch.workers);
        await until('the master to stop', () => w.code !== undefined).catch((e: Error) => {
          problems.push(`${e.message}; closing its files by hand`);
          (w.master as unknown as { cleanUp(): void }).cleanUp();
        });
      }
    } finally {
      for (const s of MASTER_SIGNALS) {
        const before = w.signalHandlers.get(s) ?? [];
        for (const h of process.listeners(s)) if (!before.includes(h as never)) process.removeListener(s, h);
      }
      w.systemd?.close();
      fs.rmSync(w.dir, { recursive: true, force: true });
    }
  }
  expect(problems).toEqual([]);
}
