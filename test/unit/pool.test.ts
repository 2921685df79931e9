// The pool and its generations (src/pool/) without a process: a fake Launch hands out fake
// worker processes whose spawn and exit the test fires, a fake clock runs timers when the test
// moves time on, and the PoolEvents the pool emits are recorded.
import type { Config, WorkersConfig } from '../../src/config/types';
import { MAX_DELAY_MS, restartDelayMs, STABLE_AFTER_MS } from '../../src/pool/backoff';
import type { Generation, PoolEvent } from '../../src/pool/generation';
import { Pool } from '../../src/pool/pool';
import type { LaunchSpec } from '../../src/pool/worker-process';
import type { Listener } from '../../src/sockets/listeners';
import { FakeClock, FakeLaunch, FakeMemory, FakeRandom, type FakeWorker } from '../helpers/fake-world';

// the signal guard every worker gets (contract/signal-guard.ts), preloaded first
const GUARD = { LD_PRELOAD: expect.stringMatching(/\/baton_signal_guard\.node$/), BATON_SIGNAL_GUARD: expect.stringMatching(/^\d+,\d+,\d+$/) };

const NOTIFY = '@baton/test/notify';

function config(workers: Partial<WorkersConfig> = {}): Config {
  return {
    file: '/nowhere/baton.json',
    name: 'pool-test',
    pidfile: '/nowhere/baton.pid',
    runtimeDir: '/nowhere',
    workers: {
      command: ['/bin/true', 'arg'],
      count: 2,
      cwd: '/',
      env: {},
      adapt: 'off',
      ready: 'spawn',
      readyTimeoutMs: 1000,
      stopSignal: 'SIGQUIT',
      stopTimeoutMs: 3000,
      watchdogMs: 0,
      watchdogSignal: 'SIGABRT',
      maxMemorySamples: 3,
      sampleIntervalMs: 5000,
      maxAgeMs: 0,
      maxAgeJitterMs: 0,
      maxRecycling: 1,
      ...workers,
    },
    reload: { soakMs: 0, maxDraining: 4, strategy: 'generation', surge: 1 },
    upgrade: { mode: 'auto', timeoutMs: 1000 },
    log: { level: 'debug', format: 'text' },
  };
}

function setUp(baseEnv: NodeJS.ProcessEnv = {}) {
  const clock = new FakeClock();
  const launch = new FakeLaunch();
  const memory = new FakeMemory();
  const random = new FakeRandom();
  const events: PoolEvent[] = [];
  const started: number[] = [];
  const lines: string[] = [];
  const logAt = (level: string) => (m: string) => void lines.push(`${level} ${m}`);
  const pool = new Pool({
    clock,
    launch: launch.fn,
    log: { debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error'), enabled: () => true } as never,
    run: (fn) => fn(),
    emit: (e) => void events.push(e),
    started: (pid) => void started.push(pid),
    exited: () => undefined,
    gated: () => false,
    notifySocket: () => NOTIFY,
    baseEnv,
    random: random.fn,
    sample: memory.fn,
  });
  /** The events of interest: everything but the status-line nudges. */
  // (worker-failed: its own test below)
  const reported = () => events.filter((e) => e.kind !== 'workers-changed' && e.kind !== 'worker-failed');
  return { clock, launch, memory, random, events, reported, lines, pool, started };
}

const READY = new Map([['READY', '1']]);
const sender = (pid: number, truncated = false) => ({ pid, worker: pid, truncated });
const stopsOf = (ws: FakeWorker[]) => ws.map((w) => w.stops);

describe('a generation getting ready', () => {
  test("ready: 'spawn': ready once every worker has spawned; one generation-ready", () => {
    const { pool, launch, reported, started } = setUp();
    const g = pool.start(1, config(), []);
    expect(launch.workers).toHaveLength(2);
    expect(started).toEqual(launch.workers.map((w) => w.pid));
    launch.workers[0].spawn();
    expect(reported()).toEqual([]);
    expect(g.state).toBe('starting');
    launch.workers[1].spawn();
    expect(reported()).toEqual([{ kind: 'generation-ready', id: 1 }]);
    expect(g.state).toBe('serving');
    expect(g.workers().map((w) => w.state)).toEqual(['ready', 'ready']);
  });

  test("ready: 'notify': spawning is not enough; READY=1 from each worker is; STATUS= is kept", () => {
    const { pool, launch, reported } = setUp();
    const g = pool.start(1, config({ ready: 'notify' }), []);
    launch.workers.forEach((w) => w.spawn());
    expect(reported()).toEqual([]);
    const [a, b] = launch.workers;
    pool.notified(sender(a.pid), new Map([['READY', '1'], ['STATUS', 'warming up']]));
    expect(reported()).toEqual([]);
    pool.notified(sender(b.pid), READY);
    pool.notified(sender(b.pid), READY);
    expect(reported()).toEqual([{ kind: 'generation-ready', id: 1 }]);
    expect(g.workers()[0].status).toBe('warming up');
  });

  test('a notification from a pid not in the pool is not routed; a truncated one from a worker is ignored', () => {
    const { pool, launch, reported, lines } = setUp();
    const g = pool.start(1, config({ ready: 'notify', count: 1 }), []);
    const [w] = launch.workers;
    const stranger = w.pid + 1000;
    expect(pool.has(stranger)).toBe(false);
    expect(pool.has(w.pid)).toBe(true);
    pool.notified(sender(stranger), READY);
    pool.notified(sender(w.pid, true), new Map());
    expect(reported()).toEqual([]);
    expect(g.workers()[0].state).toBe('starting');
    expect(lines.filter((l) => l.startsWith('warn'))).toEqual([expect.stringContaining('longer than 4096 bytes: ignored')]);
    pool.notified(sender(w.pid), READY);
    expect(reported()).toEqual([{ kind: 'generation-ready', id: 1 }]);
  });
});

describe('a generation that fails to start', () => {
  test('a worker exiting while starting fails it; the others get stopSignal with stopTimeoutMs; then pool-empty', () => {
    const { pool, launch, reported } = setUp();
    const g = pool.start(1, config({ count: 3 }), []);
    const [a, b, c] = launch.workers;
    a.spawn();
    b.exit({ code: 1, signal: null });
    expect(reported()).toEqual([{ kind: 'generation-failed', id: 1, reason: `worker 1 (pid ${b.pid}) of generation 1 exited with status 1 before it was ready` }]);
    expect(g.state).toBe('failed');
    expect(stopsOf([a, b, c])).toEqual([[['SIGQUIT', 3000]], [], [['SIGQUIT', 3000]]]);
    // the one that never spawned does not make it ready now
    c.spawn();
    a.exit();
    expect(reported()).toHaveLength(1);
    c.exit({ code: null, signal: 'SIGQUIT' });
    expect(reported()).toEqual([expect.objectContaining({ kind: 'generation-failed' }), { kind: 'pool-empty' }]);
    expect(pool.all()).toEqual([]);
  });

  test('a worker that could not be started at all (pid -1) fails it, saying why', () => {
    const { pool, launch, reported, started } = setUp();
    launch.nextPid = -1;
    pool.start(1, config({ count: 1 }), []);
    expect(started).toEqual([]);
    launch.workers[0].exit({ code: null, signal: null, error: 'spawn E2BIG' });
    expect(reported()).toEqual([
      { kind: 'generation-failed', id: 1, reason: 'worker 0 (pid -1) of generation 1 could not be started: spawn E2BIG before it was ready' },
      { kind: 'pool-empty' },
    ]);
  });

  test('ready timeout in a starting generation: it fails, every worker gets stopSignal', () => {
    const { pool, launch, reported, clock } = setUp();
    const g = pool.start(1, config({ ready: 'notify', readyTimeoutMs: 1000 }), []);
    const [a, b] = launch.workers;
    pool.notified(sender(a.pid), READY);
    clock.advance(999);
    expect(reported()).toEqual([]);
    clock.advance(1);
    expect(reported()).toEqual([
      {
        kind: 'generation-failed',
        id: 1,
        reason: `worker 1 (pid ${b.pid}) of generation 1 did not send READY=1 within 1000 ms (a program that does not speak sd_notify needs "ready": "spawn")`,
      },
    ]);
    expect(g.state).toBe('failed');
    expect(stopsOf([a, b])).toEqual([[['SIGQUIT', 3000]], [['SIGQUIT', 3000]]]);
  });

  test('READY=1 in time cancels the ready timeout', () => {
    const { pool, launch, reported, clock } = setUp();
    pool.start(1, config({ ready: 'notify', count: 1 }), []);
    pool.notified(sender(launch.workers[0].pid), READY);
    clock.advance(10 * 1000);
    expect(reported()).toEqual([{ kind: 'generation-ready', id: 1 }]);
    expect(launch.workers[0].stops).toEqual([]);
  });
});

/** A generation of `count` workers that is serving (ready: spawn, unless said otherwise). */
function serving(workers: Partial<WorkersConfig> = {}) {
  const t = setUp();
  const g = t.pool.start(1, config(workers), []);
  for (const w of t.launch.workers) {
    if (g.config.workers.ready === 'spawn') w.spawn();
    else t.pool.notified(sender(w.pid), READY);
  }
  expect(g.state).toBe('serving');
  t.events.length = 0;
  return { ...t, g };
}

describe('a serving generation', () => {
  test("a worker's crash and its hang are each reported as worker-failed (a reload's soak reverts on it); a stop is not", () => {
    const { g, launch, clock, events } = serving({ ready: 'notify', count: 2, watchdogMs: 1000 });
    const failed = () => events.filter((e) => e.kind === 'worker-failed');
    launch.workers[0].exit({ code: 1, signal: null });
    expect(failed()).toEqual([{ kind: 'worker-failed', id: g.id, slot: 0, reason: `worker 0 (pid ${launch.workers[0].pid}) of generation ${g.id} exited with status 1` }]);
    events.length = 0;
    clock.advance(1000);
    expect(failed()).toEqual([{ kind: 'worker-failed', id: g.id, slot: 1, reason: expect.stringMatching(/^worker 1 .* no WATCHDOG=1 .*: hung$/) }]);
    events.length = 0;
    g.drain();
    for (const w of launch.workers.filter((x) => !x.exited)) w.exit({ code: 0, signal: null });
    expect(failed()).toEqual([]);
  });

  test('ready timeout of a restarted worker: that worker is stopped and restarted, the generation keeps serving', () => {
    const { g, launch, clock, reported, pool } = serving({ ready: 'notify', count: 2 });
    launch.workers[0].exit({ code: 1, signal: null });
    clock.advance(0);
    expect(launch.workers).toHaveLength(3);
    const restarted = launch.workers[2];
    expect(restarted.spec.env.BATON_WORKER_ID).toBe('0');
    clock.advance(1000);
    expect(restarted.stops).toEqual([['SIGQUIT', 3000]]);
    expect(g.state).toBe('serving');
    expect(reported()).toEqual([]);
    // its exit counts as a crash: the second in a row for the slot
    restarted.exit({ code: null, signal: 'SIGQUIT' });
    clock.advance(99);
    expect(launch.workers).toHaveLength(3);
    clock.advance(1);
    expect(launch.workers).toHaveLength(4);
    pool.notified(sender(launch.workers[3].pid), READY);
    expect(g.workers().map((w) => [w.slot, w.state, w.restarts])).toEqual([
      [0, 'ready', 2],
      [1, 'ready', 0],
    ]);
    expect(reported()).toEqual([]);
  });

  test('the backoff of src/pool/backoff.ts', () => {
    expect([1, 2, 3, 4, 5].map(restartDelayMs)).toEqual([0, 100, 200, 400, 800]);
    expect(restartDelayMs(100)).toBe(MAX_DELAY_MS);
  });

  test('a crash restarts the slot after 0, 100, 200, 400 ms; after STABLE_AFTER_MS of serving, at once again', () => {
    const { g, launch, clock, lines } = serving({ count: 1 });
    const delays: number[] = [];
    for (let crash = 1; crash <= 4; crash++) {
      const before = launch.workers.length;
      launch.workers[before - 1].exit({ code: 2, signal: null });
      // how long until the slot is started again
      let waited = 0;
      while (launch.workers.length === before) {
        clock.advance(waited === 0 ? 0 : 1);
        waited++;
        if (waited > 1000) throw new Error('never restarted');
      }
      delays.push(waited - 1);
    }
    expect(delays).toEqual([0, 100, 200, 400]);
    expect(lines.filter((l) => l.includes('restarting slot'))).toHaveLength(4);
    // the fourth restart gets ready and serves long enough: the count starts over
    const fifth = launch.workers[launch.workers.length - 1];
    fifth.spawn();
    clock.advance(STABLE_AFTER_MS);
    fifth.exit({ code: 2, signal: null });
    clock.advance(0);
    expect(launch.workers).toHaveLength(6);
    expect(lines.filter((l) => l.includes('restarting slot')).pop()).toMatch(/restarting slot 0 in 0 ms, crash 1 in a row/);
    expect(g.state).toBe('serving');
  });

  test('drain: stopSignal once per worker; no restart of what exits; pool-empty after the last exit', () => {
    const { g, pool, launch, clock, reported } = serving({ count: 2 });
    g.drain();
    expect(g.state).toBe('draining');
    expect(stopsOf(launch.workers)).toEqual([[['SIGQUIT', 3000]], [['SIGQUIT', 3000]]]);
    launch.workers[0].exit({ code: 0, signal: null });
    clock.advance(MAX_DELAY_MS);
    expect(launch.workers).toHaveLength(2);
    expect(reported()).toEqual([]);
    expect(pool.all()).toEqual([g]);
    launch.workers[1].exit({ code: null, signal: 'SIGKILL' });
    expect(reported()).toEqual([{ kind: 'pool-empty' }]);
    expect(pool.all()).toEqual([]);
  });

  test('a crash pending its restart when the generation drains is not restarted', () => {
    const { g, launch, clock } = serving({ count: 1 });
    launch.workers[0].exit({ code: 1, signal: null });
    // its restart is due now (delay 0) but has not run
    g.drain();
    clock.advance(MAX_DELAY_MS);
    expect(launch.workers).toHaveLength(1);
  });

  test('stopAll(true): SIGKILL now, also to workers already stopping gracefully', () => {
    const { pool, launch, reported } = serving({ count: 2 });
    pool.start(2, config({ count: 1 }), []); // starting
    const [a, b, c] = launch.workers;
    pool.get(1)!.drain();
    pool.stopAll(true);
    expect(a.stops[0]).toEqual(['SIGQUIT', 3000]);
    expect(b.stops[0]).toEqual(['SIGQUIT', 3000]);
    for (const w of [a, b, c]) expect(w.stops.slice(-1)).toEqual([['SIGKILL', 0]]);
    // the starting generation never sent its stopSignal
    expect(c.stops.every(([sig]) => sig === 'SIGKILL')).toBe(true);
    expect(reported()).toEqual([{ kind: 'generation-failed', id: 2, reason: 'the master is stopping' }]);
    [a, b, c].forEach((w) => w.exit({ code: null, signal: 'SIGKILL' }));
    expect(reported().slice(-1)).toEqual([{ kind: 'pool-empty' }]);
  });

  test('stopAll while the only worker waits for its restart: pool-empty once', () => {
    const { pool, launch, reported } = serving({ count: 1 });
    launch.workers[0].exit({ code: 1, signal: null });
    pool.stopAll(false);
    expect(reported()).toEqual([{ kind: 'pool-empty' }]);
    expect(pool.all()).toEqual([]);
  });

  test('stopAll on an empty pool says pool-empty at once', () => {
    const { pool, reported } = setUp();
    pool.stopAll(false);
    expect(reported()).toEqual([{ kind: 'pool-empty' }]);
  });

  test('resize +1 starts a worker in the next slot; -1 stops the last slot for good', () => {
    const { g, launch, clock, reported } = serving({ count: 2 });
    g.resize(1);
    expect(g.count).toBe(3);
    expect(launch.workers).toHaveLength(3);
    expect(launch.workers[2].spec.env.BATON_WORKER_ID).toBe('2');
    launch.workers[2].spawn();
    expect(g.workers().map((w) => w.state)).toEqual(['ready', 'ready', 'ready']);
    g.resize(-1);
    g.resize(-1);
    expect(g.count).toBe(1);
    expect(stopsOf(launch.workers)).toEqual([[], [['SIGQUIT', 3000]], [['SIGQUIT', 3000]]]);
    launch.workers[1].exit();
    launch.workers[2].exit();
    clock.advance(MAX_DELAY_MS);
    expect(launch.workers).toHaveLength(3);
    expect(g.workers().map((w) => w.slot)).toEqual([0]);
    expect(g.state).toBe('serving');
    expect(reported()).toEqual([]);
  });

  test('TTOU then TTIN at once: the leaving worker stays counted (a fast stop kills it, its notifications count) until it exits', () => {
    const { g, pool, launch, reported } = serving({ count: 2 });
    g.resize(-1);
    g.resize(1);
    expect(launch.workers).toHaveLength(3);
    const [, leaving, fresh] = launch.workers;
    expect(fresh.spec.env.BATON_WORKER_ID).toBe('1');
    expect(g.workers().map((w) => w.pid).sort()).toEqual(launch.workers.map((w) => w.pid).sort());
    expect(pool.has(leaving.pid)).toBe(true);
    pool.stopAll(true);
    expect(leaving.stops.slice(-1)).toEqual([['SIGKILL', 0]]);
    launch.workers[0].exit({ code: null, signal: 'SIGKILL' });
    fresh.exit({ code: null, signal: 'SIGKILL' });
    // not gone while the leaving worker runs
    expect(reported()).toEqual([]);
    leaving.exit({ code: null, signal: 'SIGKILL' });
    expect(reported()).toEqual([{ kind: 'pool-empty' }]);
  });

  test('resize -1 of a slot waiting for its restart cancels the restart', () => {
    const { g, launch, clock } = serving({ count: 2 });
    launch.workers[1].exit({ code: 1, signal: null });
    launch.workers[0].exit({ code: 1, signal: null });
    clock.advance(0);
    expect(launch.workers).toHaveLength(4);
    // slot 1 crashes again: its restart is 100 ms away when TTOU removes the slot
    launch.workers.find((w) => !w.exited && w.env.BATON_WORKER_ID === '1')!.exit({ code: 1, signal: null });
    g.resize(-1);
    clock.advance(MAX_DELAY_MS);
    expect(launch.workers).toHaveLength(4);
    expect(launch.workers.filter((w) => w.stops.length > 0)).toEqual([]);
    expect(g.workers().map((w) => w.slot)).toEqual([0]);
  });
});

describe("a worker's launch", () => {
  const listeners: Listener[] = [
    { name: 'http', fds: [10, 11], source: 'config' },
    { name: 'admin', fds: [12], source: 'systemd' },
  ];

  test('with sockets: fds in order, LISTEN_FDS/LISTEN_FDNAMES, NOTIFY_SOCKET, BATON_WORKER_ID, BATON_GENERATION', () => {
    const { pool, launch } = setUp({ PATH: '/usr/bin', FOO: 'base', LISTEN_FDS: '9', LISTEN_PID: '1' });
    pool.start(7, config({ count: 2, env: { FOO: 'mine' }, cwd: '/srv' }), listeners);
    const specs: LaunchSpec[] = launch.workers.map((w) => w.spec);
    expect(specs.map((s) => s.fds)).toEqual([
      [10, 11, 12],
      [10, 11, 12],
    ]);
    expect(specs.map((s) => s.cwd)).toEqual(['/srv', '/srv']);
    expect(specs[1].env).toEqual({
      PATH: '/usr/bin',
      FOO: 'mine',
      NOTIFY_SOCKET: NOTIFY,
      BATON_WORKER_ID: '1',
      BATON_GENERATION: '7',
      LISTEN_FDS: '3',
      LISTEN_FDNAMES: 'http:http:admin',
      ...GUARD,
    });
    expect(specs[0].env.BATON_WORKER_ID).toBe('0');
    expect(specs[0].argv).toEqual(expect.arrayContaining(['/bin/true', 'arg']));
  });

  test('without sockets: no LISTEN_* at all, not even from the environment or workers.env', () => {
    const { pool, launch } = setUp({ LISTEN_FDS: '2', LISTEN_FDNAMES: 'a:b', HOME: '/root' });
    pool.start(1, config({ count: 1, env: { LISTEN_FDNAMES: 'x' } }), []);
    const { env, fds } = launch.workers[0].spec;
    expect(fds).toEqual([]);
    expect(env).toEqual({ HOME: '/root', NOTIFY_SOCKET: NOTIFY, BATON_WORKER_ID: '0', BATON_GENERATION: '1', ...GUARD });
  });
});

describe('generations side by side', () => {
  test('a new generation gets ready beside a serving one; draining the old leaves the new, no pool-empty', () => {
    const { pool, launch, reported } = serving({ count: 1 });
    const g2 = pool.start(2, config({ count: 1 }), []);
    launch.workers[1].spawn();
    expect(reported()).toEqual([{ kind: 'generation-ready', id: 2 }]);
    pool.get(1)!.drain();
    launch.workers[0].exit();
    expect(pool.all()).toEqual([g2]);
    expect(reported()).toEqual([{ kind: 'generation-ready', id: 2 }]);
    // a notification reaches the generation of the worker it came from
    pool.notified(sender(launch.workers[1].pid), new Map([['STATUS', 'gen 2']]));
    expect(g2.workers()[0].status).toBe('gen 2');
  });
});

describe('the worker watchdog (workers.watchdogMs)', () => {
  const PING = new Map([['WATCHDOG', '1']]);
  const fields = (k: string, v: string) => new Map([[k, v]]);
  /** A serving generation of one `ready: notify` worker watched every 1000 ms. */
  const watched = (workers: Partial<WorkersConfig> = {}) => serving({ ready: 'notify', count: 1, watchdogMs: 1000, ...workers });
  const errors = (lines: string[]) => lines.filter((l) => l.startsWith('error'));

  test('off by default: no WATCHDOG_* for the worker (not even from baton\'s or workers.env), nothing fires', () => {
    const { pool, launch, clock } = setUp({ WATCHDOG_USEC: '5', WATCHDOG_PID: '1' });
    pool.start(1, config({ count: 1, env: { WATCHDOG_PID: '7', WATCHDOG_USEC: '9' } }), []);
    const [w] = launch.workers;
    expect(Object.keys(w.env).filter((k) => k.startsWith('WATCHDOG'))).toEqual([]);
    expect(w.spec.argv.join(' ')).not.toContain('WATCHDOG_PID');
    w.spawn();
    clock.advance(MAX_DELAY_MS * 10);
    expect(w.stops).toEqual([]);
  });

  test('on: WATCHDOG_USEC is the period in µs; the shim sets WATCHDOG_PID to the worker\'s pid, LISTEN_PID as before', () => {
    const { pool, launch } = setUp({ WATCHDOG_PID: '1' });
    pool.start(1, config({ count: 1, watchdogMs: 1500, env: { WATCHDOG_PID: '7' } }), [{ name: 'http', fds: [10], source: 'config' }]);
    const { env, argv } = launch.workers[0].spec;
    expect(env.WATCHDOG_USEC).toBe('1500000');
    expect(env.WATCHDOG_PID).toBeUndefined();
    expect(argv.slice(0, 3)).toEqual([
      '/bin/sh',
      '-c',
      'trap "" USR2 HUP WINCH; LISTEN_PID=$$; export LISTEN_PID; WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$0" "$@"',
    ]);
  });

  test('armed at READY=1, not before; each WATCHDOG=1 pushes it back a whole period', () => {
    const { pool, launch, clock } = setUp();
    const g = pool.start(1, config({ ready: 'notify', readyTimeoutMs: 5000, count: 1, watchdogMs: 1000 }), []);
    const [w] = launch.workers;
    // starting: readyTimeoutMs watches it, not the watchdog
    clock.advance(4000);
    expect(w.stops).toEqual([]);
    pool.notified(sender(w.pid), READY);
    for (let i = 0; i < 10; i++) {
      clock.advance(999);
      pool.notified(sender(w.pid), PING);
    }
    expect(w.stops).toEqual([]);
    clock.advance(999);
    expect(w.stops).toEqual([]);
    clock.advance(1);
    expect(w.stops).toEqual([['SIGABRT', 3000]]);
    expect(g.watchdogKills).toBe(1);
  });

  test('no WATCHDOG=1 within the period: logged, watchdogSignal with the stopTimeoutMs deadline, counted; its exit is a crash, restarted with the backoff', () => {
    const { g, pool, launch, clock, lines, reported } = watched({ watchdogSignal: 'SIGQUIT', stopSignal: 'SIGTERM', stopTimeoutMs: 2500 });
    const first = launch.workers[0];
    clock.advance(1000);
    expect(first.stops).toEqual([['SIGQUIT', 2500]]);
    expect(errors(lines)).toEqual([
      `error worker 0 (pid ${first.pid}) of generation 1 sent no WATCHDOG=1 within 1000 ms: hung; sending SIGQUIT to its process group, SIGKILL in 2500 ms`,
    ]);
    expect(g.workers().map((w) => w.state)).toEqual(['stopping']);
    // a ping or a drain now changes nothing: the first deadline stands (no stopSignal after it)
    pool.notified(sender(first.pid), PING);
    clock.advance(5000);
    expect(first.stops).toEqual([['SIGQUIT', 2500]]);
    first.exit({ code: null, signal: 'SIGQUIT' });
    expect(errors(lines).pop()).toBe(`error worker 0 (pid ${first.pid}) of generation 1 was killed by SIGQUIT (watchdog); restarting slot 0 in 0 ms, crash 1 in a row`);
    clock.advance(0);
    expect(launch.workers).toHaveLength(2);
    // the second hang in a row: restarted after 100 ms
    const second = launch.workers[1];
    pool.notified(sender(second.pid), READY);
    clock.advance(1000);
    expect(second.stops).toEqual([['SIGQUIT', 2500]]);
    second.exit({ code: null, signal: 'SIGKILL' });
    clock.advance(99);
    expect(launch.workers).toHaveLength(2);
    clock.advance(1);
    expect(launch.workers).toHaveLength(3);
    expect(g.watchdogKills).toBe(2);
    expect(pool.watchdogKills).toBe(2);
    expect(g.state).toBe('serving');
    expect(reported()).toEqual([]);
  });

  test('WATCHDOG=trigger: at once, also with the watchdog off (as systemd); not once the worker is stopping', () => {
    const { g, pool, launch, lines } = serving({ count: 2 });
    const [a, b] = launch.workers;
    pool.notified(sender(a.pid), fields('WATCHDOG', 'trigger'));
    expect(a.stops).toEqual([['SIGABRT', 3000]]);
    expect(errors(lines)).toEqual([expect.stringContaining(`worker 0 (pid ${a.pid}) of generation 1 sent WATCHDOG=trigger: hung; sending SIGABRT`)]);
    g.resize(-1);
    pool.notified(sender(b.pid), fields('WATCHDOG', 'trigger'));
    expect(b.stops).toEqual([['SIGQUIT', 3000]]);
    expect(g.watchdogKills).toBe(1);
  });

  test('WATCHDOG_USEC= from the worker: a new period from now; 0 and UINT64_MAX turn it off; "infinity" is no number (ignored, as systemd does)', () => {
    const { g, pool, launch, clock, lines } = watched();
    const [w] = launch.workers;
    const period = () => g.workers()[0].watchdog.periodMs;
    clock.advance(900);
    pool.notified(sender(w.pid), fields('WATCHDOG_USEC', '5000000'));
    clock.advance(4999);
    expect(w.stops).toEqual([]);
    pool.notified(sender(w.pid), fields('WATCHDOG_USEC', 'infinity'));
    expect(lines.filter((l) => l.startsWith('warn'))).toEqual([
      `warn worker 0 (pid ${w.pid}) of generation 1 sent WATCHDOG_USEC=infinity: not a number of microseconds, ignored`,
    ]);
    expect(period()).toBe(5000);
    pool.notified(sender(w.pid), fields('WATCHDOG_USEC', '0'));
    expect(period()).toBe(0);
    clock.advance(60_000);
    expect(w.stops).toEqual([]);
    // µs rounded up to whole ms; a shorter period than the one running takes effect at once
    pool.notified(sender(w.pid), fields('WATCHDOG_USEC', '200001'));
    expect(period()).toBe(201);
    clock.advance(201);
    expect(w.stops).toEqual([['SIGABRT', 3000]]);
    expect(errors(lines)[0]).toContain('sent no WATCHDOG=1 within 201 ms: hung');
    const again = serving({ ready: 'notify', count: 1, watchdogMs: 1000 });
    again.pool.notified(sender(again.launch.workers[0].pid), fields('WATCHDOG_USEC', '18446744073709551615'));
    again.clock.advance(60_000);
    expect(again.launch.workers[0].stops).toEqual([]);
  });

  test('WATCHDOG_USEC= turns a watchdog on where workers.watchdogMs is off; sent before READY=1 it counts from READY=1', () => {
    const { pool, launch, clock } = setUp();
    pool.start(1, config({ ready: 'notify', count: 1 }), []);
    const [w] = launch.workers;
    pool.notified(sender(w.pid), fields('WATCHDOG_USEC', '2000000'));
    clock.advance(500);
    expect(w.stops).toEqual([]);
    pool.notified(sender(w.pid), READY);
    clock.advance(1999);
    expect(w.stops).toEqual([]);
    clock.advance(1);
    expect(w.stops).toEqual([['SIGABRT', 3000]]);
  });

  test('a period longer than a timer can wait (2³¹ ms) fires at its end, not before', () => {
    const days30 = 30 * 24 * 3600 * 1000;
    const { launch, clock } = watched({ watchdogMs: days30 });
    clock.advance(2 ** 31);
    expect(launch.workers[0].stops).toEqual([]);
    clock.advance(days30 - 2 ** 31 - 1);
    expect(launch.workers[0].stops).toEqual([]);
    clock.advance(1);
    expect(launch.workers[0].stops).toEqual([['SIGABRT', 3000]]);
  });

  test('a draining generation is not watched: stopSignal and stopTimeoutMs alone', () => {
    const { g, launch, clock } = watched();
    g.drain();
    clock.advance(10_000);
    expect(launch.workers[0].stops).toEqual([['SIGQUIT', 3000]]);
    expect(g.watchdogKills).toBe(0);
  });

  test('a hang in a starting generation fails it with the watchdog\'s reason; the hung worker keeps watchdogSignal', () => {
    const { pool, launch, clock, reported } = setUp();
    pool.start(1, config({ ready: 'notify', readyTimeoutMs: 5000, count: 2, watchdogMs: 1000 }), []);
    const [a, b] = launch.workers;
    pool.notified(sender(a.pid), READY);
    clock.advance(1000);
    expect(reported()).toEqual([
      { kind: 'generation-failed', id: 1, reason: `worker 0 (pid ${a.pid}) of generation 1 sent no WATCHDOG=1 within 1000 ms: hung` },
    ]);
    expect(stopsOf([a, b])).toEqual([[['SIGABRT', 3000]], [['SIGQUIT', 3000]]]);
  });

  test('watchdog kills of generations gone still count in the total', () => {
    const { g, pool, launch } = watched();
    pool.notified(sender(launch.workers[0].pid), fields('WATCHDOG', 'trigger'));
    g.drain();
    launch.workers[0].exit({ code: null, signal: 'SIGABRT' });
    expect(pool.all()).toEqual([]);
    expect(pool.watchdogKills).toBe(1);
  });
});

describe('recycling (workers.maxAgeMs, workers.maxMemory): the replacement first, the old worker drains once it is ready', () => {
  const MiB = 2 ** 20;
  type Due = Extract<PoolEvent, { kind: 'recycle-due' }>;
  const HTTP: Listener[] = [{ name: 'http', fds: [10, 11], source: 'config' }];

  /** A serving generation with limits; the random source gives `jitter` (in order) first. */
  function limited(workers: Partial<WorkersConfig>, jitter: number[] = []) {
    const t = setUp();
    t.random.values.push(...jitter);
    const g = t.pool.start(1, config({ ready: 'notify', count: 2, ...workers }), HTTP);
    for (const w of t.launch.workers) t.pool.notified(sender(w.pid), READY);
    expect(g.state).toBe('serving');
    t.events.length = 0;
    return { ...t, g };
  }
  const due = (events: PoolEvent[]) => events.filter((e): e is Due => e.kind === 'recycle-due');
  /** What the master does in running: every recycle-due so far is answered (the events are cleared). */
  function answer(t: { events: PoolEvent[]; pool: Pool }): Due[] {
    const asked = due(t.events);
    t.events.length = 0;
    for (const e of asked) t.pool.get(e.id)!.recycle(e);
    return asked;
  }
  const rows = (g: Generation) => g.workers().map((w) => [w.slot, w.pid, w.state, w.recycling ?? '-']);

  test('age: due at start + maxAgeMs + its own jitter; a replacement for the slot with its sockets; the old one serves until the replacement is ready, then drains', () => {
    // jitter: floor(random * (maxAgeJitterMs + 1)): 0 for slot 0, 500 for slot 1
    const t = limited({ maxAgeMs: 10_000, maxAgeJitterMs: 1000, sampleIntervalMs: 250, readyTimeoutMs: 5000 }, [0, 0.5]);
    const { g, launch, clock, pool, lines } = t;
    const [a, b] = launch.workers;
    clock.advance(9_999);
    expect(due(t.events)).toEqual([]);
    clock.advance(1);
    expect(answer(t)).toEqual([{ kind: 'recycle-due', id: 1, slot: 0, pid: a.pid, why: 'age' }]);
    const next = launch.workers[2];
    expect(next.spec.env.BATON_WORKER_ID).toBe('0');
    expect(next.spec.env.BATON_GENERATION).toBe('1');
    expect(next.spec.fds).toEqual(a.spec.fds);
    expect(next.spec.fds).toEqual([10, 11]);
    // count + 1 while it starts; nothing stopped yet
    expect(rows(g)).toEqual([[0, a.pid, 'ready', 'age'], [0, next.pid, 'starting', '-'], [1, b.pid, 'ready', '-']]);
    expect(stopsOf([a, b])).toEqual([[], []]);
    expect(lines).toContainEqual(`info recycling worker 0 (pid ${a.pid}) of generation 1 (age: up 10.0 s, past workers.maxAgeMs 10000 ms + its jitter 0 ms): its replacement is pid ${next.pid}; the old one serves until it is ready`);
    // slot 1 is due at 10 500, but one recycle is under way (maxRecycling 1): not asked
    clock.advance(1000);
    expect(due(t.events)).toEqual([]);
    expect(a.stops).toEqual([]);
    pool.notified(sender(next.pid), READY);
    expect(a.stops).toEqual([['SIGQUIT', 3000]]);
    expect(g.recycles).toEqual({ memory: 0, age: 1 });
    expect(rows(g)).toEqual([[0, next.pid, 'ready', '-'], [0, a.pid, 'stopping', '-'], [1, b.pid, 'ready', '-']]);
    expect(lines).toContainEqual(
      `info worker 0 (pid ${a.pid}) of generation 1 recycled (age: up 10.0 s, past workers.maxAgeMs 10000 ms + its jitter 0 ms): its replacement (pid ${next.pid}) ` +
        'is ready after 1000 ms and holds slot 0; the old one drains (SIGQUIT, deadline 3000 ms)',
    );
    // its exit is no crash: no restart; the slot's last exit says why
    a.exit({ code: 0, signal: null });
    expect(g.lastExit(0)).toEqual({ code: 0, signal: null, at: clock.now(), why: 'age', generation: 1 });
    clock.advance(250);
    expect(answer(t)).toEqual([{ kind: 'recycle-due', id: 1, slot: 1, pid: b.pid, why: 'age' }]);
    expect(launch.workers.map((w) => w.spec.env.BATON_WORKER_ID)).toEqual(['0', '1', '0', '1']);
    expect(g.workers().map((w) => w.slot)).toEqual([0, 1, 1]);
  });

  test('a replacement that does not get ready within readyTimeoutMs is stopped; the old worker serves on; the slot waits out a backoff', () => {
    const t = limited({ maxAgeMs: 10_000, maxAgeJitterMs: 0, sampleIntervalMs: 250, readyTimeoutMs: 1000, count: 1 });
    const { g, launch, clock, lines } = t;
    const [a] = launch.workers;
    clock.advance(10_000);
    answer(t);
    const next = launch.workers[1];
    clock.advance(1000);
    expect(next.stops).toEqual([['SIGQUIT', 3000]]);
    expect(a.stops).toEqual([]);
    expect(lines).toContainEqual(
      `error recycling worker 0 (pid ${a.pid}) of generation 1 (age) failed: its replacement (pid ${next.pid}) did not send READY=1 within 1000 ms; ` +
        "the old worker serves on, the slot's next recycle waits 1000 ms (1 failed in a row)",
    );
    // until the stopped replacement is gone it counts as under way
    clock.advance(5000);
    expect(due(t.events)).toEqual([]);
    next.exit({ code: null, signal: 'SIGQUIT' });
    expect(g.workers().map((w) => [w.pid, w.state])).toEqual([[a.pid, 'ready']]);
    expect(g.recycles).toEqual({ memory: 0, age: 0 });
    clock.advance(250);
    expect(answer(t)).toEqual([expect.objectContaining({ slot: 0, pid: a.pid, why: 'age' })]);
    // this one exits before it is ready: stopped, counted, the wait doubles
    const again = launch.workers[2];
    again.exit({ code: 1, signal: null });
    expect(lines).toContainEqual(expect.stringMatching(/its replacement \(pid \d+\) exited with status 1 before it was ready; the old worker serves on, the slot's next recycle waits 2000 ms \(2 failed in a row\)$/));
    expect(a.stops).toEqual([]);
    clock.advance(1750);
    expect(due(t.events)).toEqual([]);
    clock.advance(250);
    expect(due(t.events)).toHaveLength(1);
    expect(g.state).toBe('serving');
  });

  test('memory: over workers.maxMemory in maxMemorySamples samples in a row; a sample under starts the count again; the log has the figures', () => {
    const t = limited({ maxMemory: 100 * MiB, maxMemorySamples: 3, sampleIntervalMs: 1000 });
    const { g, launch, clock, memory, lines } = t;
    const [a, b] = launch.workers;
    memory.set(b.pid, 50 * MiB);
    memory.set(a.pid, 101 * MiB);
    clock.advance(2000);
    memory.set(a.pid, 99 * MiB);
    clock.advance(1000);
    memory.set(a.pid, 150 * MiB);
    clock.advance(2000);
    expect(due(t.events)).toEqual([]);
    clock.advance(1000);
    expect(answer(t)).toEqual([{ kind: 'recycle-due', id: 1, slot: 0, pid: a.pid, why: 'memory' }]);
    // one pass for the generation's workers at each check, one for each worker as it gets ready
    expect(memory.samples.slice(-2)).toEqual([[a.pid, b.pid], [a.pid, b.pid]]);
    const next = launch.workers[2];
    memory.set(next.pid, 40 * MiB);
    t.pool.notified(sender(next.pid), READY);
    expect(memory.samples.slice(-1)).toEqual([[next.pid]]);
    expect(a.stops).toEqual([['SIGQUIT', 3000]]);
    expect(g.recycles).toEqual({ memory: 1, age: 0 });
    a.exit({ code: 0, signal: null });
    expect(g.lastExit(0)?.why).toBe('memory');
    expect(lines).toContainEqual(expect.stringContaining(`info recycling worker 0 (pid ${a.pid}) of generation 1 (memory: PSS 150.0 MiB over workers.maxMemory 100.0 MiB in 3 samples in a row)`));
    // RSS stands in where PSS cannot be read, and the log says which
    memory.pss = false;
    memory.set(b.pid, 200 * MiB);
    clock.advance(3000);
    expect(answer(t)).toEqual([expect.objectContaining({ slot: 1, why: 'memory' })]);
    expect(lines.slice(-1)[0]).toContain('(memory: RSS 200.0 MiB over workers.maxMemory 100.0 MiB in 3 samples in a row)');
  });

  test('no limit: no timer, no sample', () => {
    const t = limited({});
    expect(t.clock.armed).toBe(0);
    t.clock.advance(24 * 3600 * 1000);
    expect(t.memory.samples).toEqual([]);
    expect(due(t.events)).toEqual([]);
  });

  test('a worker over workers.maxMemory as it gets ready fails a starting generation, saying the limit is below what a worker needs', () => {
    const { pool, launch, memory, reported } = setUp();
    pool.start(1, config({ ready: 'notify', count: 2, maxMemory: 10 * MiB }), []);
    const [a] = launch.workers;
    memory.set(a.pid, 30 * MiB);
    pool.notified(sender(a.pid), READY);
    expect(reported()).toEqual([
      {
        kind: 'generation-failed',
        id: 1,
        reason: `worker 0 (pid ${a.pid}) of generation 1 uses PSS 30.0 MiB as it gets ready, over workers.maxMemory (10.0 MiB): the limit is below what a worker needs`,
      },
    ]);
  });

  test('a replacement over the limit from its start does not loop: each such recycle waits a longer backoff, logged', () => {
    const t = limited({ maxMemory: 100 * MiB, maxMemorySamples: 1, sampleIntervalMs: 100, count: 1 });
    const { launch, clock, memory, lines, pool } = t;
    memory.set(launch.workers[0].pid, 200 * MiB);
    const recycledAt: number[] = [];
    // an hour of a limit no worker can meet: every replacement is over it as it gets ready
    for (let ms = 0; ms < 3600_000; ms += 100) {
      clock.advance(100);
      for (const e of answer(t)) {
        const next = launch.workers.at(-1)!;
        memory.set(next.pid, 200 * MiB);
        pool.notified(sender(next.pid), READY);
        launch.workers.find((w) => w.pid === e.pid)!.exit({ code: 0, signal: null });
        recycledAt.push(clock.now());
      }
    }
    // backoff 1 s, 2 s, 4 s ... up to 5 min: about 18 recycles in an hour, not 36,000
    expect(recycledAt.length).toBeGreaterThan(10);
    expect(recycledAt.length).toBeLessThan(25);
    const gaps = recycledAt.slice(1).map((x, i) => x - recycledAt[i]);
    expect(gaps.slice(-3)).toEqual([300_100, 300_100, 300_100]);
    expect(lines).toContainEqual(expect.stringMatching(/^error worker 0 \(pid \d+\) of generation 1 is over workers.maxMemory \(100.0 MiB\) since it got ready \(PSS 200.0 MiB now\): the limit is below what a worker needs; recycling slot 0 waits 300000 ms \(backoff: \d+ in a row\), it does not loop$/));
  });

  test('at most maxRecycling at once: four workers due together recycle one after another, in deadline order', () => {
    // jitter of slots 0..3: 900, 100, 500, 300 ms: deadlines in the order 1, 3, 2, 0
    const t = limited({ count: 4, maxAgeMs: 60_000, maxAgeJitterMs: 1000, sampleIntervalMs: 100 }, [0.9, 0.1, 0.5, 0.3]);
    const { g, launch, clock, pool } = t;
    const order: string[] = [];
    let most = 0;
    for (let ms = 0; ms < 65_000; ms += 100) {
      clock.advance(100);
      for (const e of answer(t)) order.push(`${e.slot}@${clock.now() - g.startedAt}`);
      most = Math.max(most, g.workers().filter((w) => w.state === 'starting').length);
      // each replacement gets ready 700 ms after it started: longer than the gaps between deadlines
      for (const w of g.workers()) if (w.state === 'starting' && clock.now() - w.startedAt >= 700) pool.notified(sender(w.pid), READY);
    }
    expect(order).toEqual(['1@60100', '3@60900', '2@61700', '0@62500']);
    expect(most).toBe(1);
    expect(g.recycles.age).toBe(4);
    expect(launch.workers).toHaveLength(8);
  });

  test('maxRecycling 2: two at once, never three', () => {
    const t = limited({ count: 4, maxAgeMs: 60_000, maxAgeJitterMs: 0, sampleIntervalMs: 100, maxRecycling: 2 });
    const { g, clock } = t;
    clock.advance(60_000);
    expect(answer(t).map((e) => e.slot)).toEqual([0, 1]);
    expect(g.workers().filter((w) => w.state === 'starting')).toHaveLength(2);
    // a stale or surplus answer changes nothing
    const [a] = t.launch.workers;
    g.recycle({ id: 1, slot: 2, pid: t.launch.workers[2].pid, why: 'age' });
    g.recycle({ id: 1, slot: 0, pid: a.pid, why: 'age' });
    expect(t.launch.workers).toHaveLength(6);
  });

  test('the old worker exiting while its replacement starts: the replacement holds the slot, no restart', () => {
    const t = limited({ maxAgeMs: 1000, maxAgeJitterMs: 0, sampleIntervalMs: 100, count: 1 });
    const { g, launch, clock, lines, pool } = t;
    clock.advance(1000);
    answer(t);
    const [a, next] = launch.workers;
    a.exit({ code: 1, signal: null });
    clock.advance(0);
    expect(launch.workers).toHaveLength(2);
    expect(lines).toContainEqual(`error worker 0 (pid ${a.pid}) of generation 1 exited with status 1; its replacement (pid ${next.pid}), still starting, holds slot 0 now`);
    pool.notified(sender(next.pid), READY);
    expect(rows(g)).toEqual([[0, next.pid, 'ready', '-']]);
    expect(g.recycles.age).toBe(0);
  });

  test('TTOU takes the slot of a recycle under way: the replacement and the old worker stop, with no backoff for anyone', () => {
    // jitter: slot 0 900 ms, slot 1 0 ms: slot 1 first
    const t = limited({ maxAgeMs: 1000, maxAgeJitterMs: 1000, sampleIntervalMs: 100 }, [0.9, 0]);
    const { g, launch, clock, lines } = t;
    const [a, b] = launch.workers;
    clock.advance(1000);
    expect(answer(t).map((e) => e.slot)).toEqual([1]);
    const next = launch.workers[2];
    g.resize(-1);
    expect(stopsOf([a, b, next])).toEqual([[], [['SIGQUIT', 3000]], [['SIGQUIT', 3000]]]);
    expect(lines).toContainEqual(`info recycling worker 1 (pid ${b.pid}) of generation 1 cancelled: its slot was removed (SIGTTOU); stopping its replacement (pid ${next.pid})`);
    next.exit();
    b.exit();
    expect(g.lastExit(1)?.why).toBe('resize');
    clock.advance(900);
    expect(answer(t)).toEqual([expect.objectContaining({ slot: 0, pid: a.pid, why: 'age' })]);
    expect(g.workers().map((w) => [w.slot, w.state])).toEqual([[0, 'ready'], [0, 'starting']]);
  });

  test('a drain stops the replacement too; pool-empty once both are gone', () => {
    const t = limited({ maxAgeMs: 1000, maxAgeJitterMs: 0, sampleIntervalMs: 100, count: 1 });
    const { g, launch, clock, reported } = t;
    clock.advance(1000);
    answer(t);
    g.drain();
    const [a, next] = launch.workers;
    expect(stopsOf([a, next])).toEqual([[['SIGQUIT', 3000]], [['SIGQUIT', 3000]]]);
    a.exit();
    next.exit();
    expect(reported()).toEqual([{ kind: 'pool-empty' }]);
    clock.advance(10_000);
    expect(launch.workers).toHaveLength(2);
  });
});

describe("each slot's last exit (for status)", () => {
  test('says why: watchdog, crash, stop; an exit in a newer generation is not an older one\'s past', () => {
    const { g, launch, clock, pool } = serving({ ready: 'notify', count: 2 });
    const [a, b] = launch.workers;
    pool.notified(sender(a.pid), new Map([['WATCHDOG', 'trigger']]));
    a.exit({ code: null, signal: 'SIGABRT' });
    expect(g.lastExit(0)).toEqual({ code: null, signal: 'SIGABRT', at: clock.now(), why: 'watchdog', generation: 1 });
    clock.advance(500);
    b.exit({ code: 1, signal: null });
    expect(g.lastExit(1)).toEqual({ code: 1, signal: null, at: clock.now(), why: 'crash', generation: 1 });
    clock.advance(0); // both slots restarted
    // generation 2 starts; one of its workers fails it: gen 1's workers keep their own past
    const g2 = pool.start(2, config({ count: 2 }), []);
    const [c] = launch.workers.filter((w) => w.env.BATON_GENERATION === '2');
    c.exit({ code: 7, signal: null });
    expect(g2.lastExit(0)).toEqual(expect.objectContaining({ code: 7, why: 'crash', generation: 2 }));
    expect(g.lastExit(0)).toBeUndefined();
    g.drain();
    for (const w of launch.running().filter((x) => x.env.BATON_GENERATION === '1')) w.exit({ code: null, signal: 'SIGQUIT' });
    expect([g.lastExit(0)?.why, g.lastExit(1)?.why]).toEqual(['stop', 'stop']);
  });
});
