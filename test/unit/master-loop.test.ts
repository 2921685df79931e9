// The master's event loop (src/master/master.ts) without a worker process, on the fake world
// (helpers/fake-master.ts): start-up, reload, stop, status, WINCH, TTIN/TTOU, USR1, crashes.
// The binary upgrade's flows: upgrade-loop.test.ts.
import fs from 'node:fs';
import { controlSocketPath, type StatusReply } from '../../src/contract/control';
import { request } from '../../src/control/client';
import { native } from '../../src/native';
import type { Sampler } from '../../src/master/status';
import type { GroupSample } from '../../src/system/proc-sample';
import {
  ask, connect, createMaster, type World, distinct, exitAll, exitCode, gone, phase, portOf, reload, running, spawnAll, startMaster, status, stop, takenPort, until, useFakeMasters, writeConfig,
} from '../helpers/fake-master';

useFakeMasters();

describe('start-up', () => {
  test('starting until every worker is ready, then running; pidfile, control.sock and the listener are there', async () => {
    const w = await startMaster({ tcp: true, count: 2 });
    expect(phase(w)).toBe('starting');
    expect(reload(w)).toEqual([{ ok: false, error: 'reload refused: the master is starting' }]);
    const [a, b] = w.launch.of(1);
    a.spawn();
    expect(phase(w)).toBe('starting');
    b.spawn();
    const s = status(w);
    expect(s.phase).toBe('running');
    expect(s.generation).toBe(1);
    expect(s.generations.map((g) => [g.id, g.state, g.workers.map((x) => x.pid)])).toEqual([[1, 'serving', [a.pid, b.pid]]]);
    expect(s.listeners).toEqual([expect.objectContaining({ name: 'http', source: 'config', addresses: [expect.stringMatching(/^127\.0\.0\.1:\d+$/)] })]);
    expect(fs.readFileSync(w.pidfile, 'utf8')).toBe(`${process.pid}\n`);
    expect(fs.statSync(controlSocketPath(w.runtimeDir)).isSocket()).toBe(true);
    // what the workers were given
    expect(a.env.LISTEN_FDS).toBe('1');
    expect(a.env.LISTEN_FDNAMES).toBe('http');
    expect(a.env.NOTIFY_SOCKET).toMatch(/^@baton\/loop-test\//);
    expect(a.spec.fds).toEqual(s.listeners[0].fds);
  });

  test("ready: 'notify': READY=1 through the master's own notify socket makes it running", async () => {
    // the one worker has this process's pid, so a datagram sent from here counts as its
    const w = await startMaster({ ready: 'notify', count: 1, firstPid: process.pid });
    const [only] = w.launch.of(1);
    only.spawn();
    expect(phase(w)).toBe('starting');
    native.notifySend(only.env.NOTIFY_SOCKET, Buffer.from('READY=1\nSTATUS=hello'));
    await until('READY=1 to arrive', () => phase(w) === 'running');
    expect(status(w).generations[0].workers[0].status).toBe('hello');
  });

  test('a listener that cannot be bound: start() resolves 1, no worker, nothing left behind', async () => {
    const port = await takenPort();
    const w = createMaster({ listeners: [{ name: 'http', tcp: `127.0.0.1:${port}` }] });
    expect(await exitCode(w)).toBe(1);
    expect(w.launch.workers).toEqual([]);
    expect(w.lines).toContainEqual(expect.stringMatching(/^error cannot start: .*EADDRINUSE/));
    expect(gone(controlSocketPath(w.runtimeDir)) && gone(w.pidfile)).toBe(true);
  });

  test('a worker exiting before it is ready: stopping, the others stopped, start() resolves 1', async () => {
    const w = await startMaster({ count: 2 });
    const [a, b] = w.launch.of(1);
    a.exit({ code: 3, signal: null });
    expect(phase(w)).toBe('stopping');
    expect(distinct(b.stops)).toEqual([['SIGTERM', 7000]]);
    expect(w.lines).toContainEqual(expect.stringMatching(/^error cannot start: worker 0 .* exited with status 3 before it was ready/));
    b.exit();
    expect(await exitCode(w)).toBe(1);
    expect(gone(w.pidfile) && gone(controlSocketPath(w.runtimeDir))).toBe(true);
  });

  test('the ready timeout at start-up (fake time): stopping, exit code 1', async () => {
    const w = await startMaster({ ready: 'notify', count: 1, readyTimeoutMs: 2000 });
    w.clock.advance(1999);
    expect(phase(w)).toBe('starting');
    w.clock.advance(1);
    expect(phase(w)).toBe('stopping');
    exitAll(w.launch.workers);
    expect(await exitCode(w)).toBe(1);
  });

  test('stop while starting: the starting generation is stopped; exit code 0', async () => {
    const w = await startMaster({ count: 2 });
    expect(stop(w)).toEqual([{ ok: true, pid: process.pid }]);
    expect(phase(w)).toBe('stopping');
    expect(w.launch.of(1).map((x) => x.stops)).toEqual([[['SIGTERM', 7000]], [['SIGTERM', 7000]]]);
    exitAll(w.launch.workers);
    expect(await exitCode(w)).toBe(0);
  });
});

describe('generations draining at once (reload.maxDraining)', () => {
  test('one more than the cap: the oldest draining generation is stopped now (SIGKILL); the others drain on', async () => {
    const w = await running({ count: 1, maxDraining: 2 });
    for (let g = 2; g <= 4; g++) {
      const replies = reload(w);
      await until(`generation ${g} to be launched`, () => w.launch.of(g).length === 1);
      spawnAll(w.launch.of(g));
      expect(replies).toEqual([{ ok: true, generation: g, ms: expect.any(Number) }]);
    }
    // generations 1, 2 and 3 were told to stop and hold on (long-lived connections): 1 is one too many
    expect(w.launch.of(1)[0].stops).toEqual([['SIGTERM', 7000], ['SIGKILL', 0]]);
    expect(w.launch.of(2)[0].stops).toEqual([['SIGTERM', 7000]]);
    expect(w.launch.of(3)[0].stops).toEqual([['SIGTERM', 7000]]);
    expect(w.lines).toContainEqual('warn generation 1: more than reload.maxDraining (2) generations are draining; its 1 worker(s) are stopped now (SIGKILL), the oldest first');
    // the default, 4, leaves them be
    expect(status(w).generations.map((g) => [g.id, g.state])).toEqual([
      [1, 'draining'],
      [2, 'draining'],
      [3, 'draining'],
      [4, 'serving'],
    ]);
  });
});

describe('reload with a soak (reload.soakMs)', () => {
  /** A master of 2 workers whose reload to generation 2 is ready, soaking 10 s; the reply so far. */
  async function soaking() {
    const w = await running({ count: 2, soakMs: 10_000 });
    const reply = reload(w);
    await until('generation 2 to be launched', () => w.launch.of(2).length === 2);
    spawnAll(w.launch.of(2));
    return { w, reply, old: w.launch.of(1), next: w.launch.of(2) };
  }

  test('ready: both generations serve until the soak is over, then the old one drains and the reload answers', async () => {
    const { w, reply, old } = await soaking();
    expect(reply).toEqual([]);
    expect(phase(w)).toBe('reloading');
    expect(status(w).generations.map((g) => [g.id, g.state])).toEqual([
      [1, 'serving'],
      [2, 'serving'],
    ]);
    expect(status(w).soak).toEqual({ of: 'reload', generation: 2, endsAt: new Date(w.clock.now() + 10_000).toISOString() });
    expect(old.map((x) => x.stops)).toEqual([[], []]);
    w.clock.advance(9_999);
    expect(reply).toEqual([]);
    w.clock.advance(1);
    expect(reply).toEqual([{ ok: true, generation: 2, ms: expect.any(Number) }]);
    expect(phase(w)).toBe('running');
    expect(old.map((x) => x.stops)).toEqual([[['SIGTERM', 7000]], [['SIGTERM', 7000]]]);
    expect(status(w).generation).toBe(2);
    expect(status(w).soak).toBeUndefined();
  });

  test('a new worker crashes in the soak: reverted; the new generation drains, the old one never stopped', async () => {
    const { w, reply, old, next } = await soaking();
    w.clock.advance(3_000);
    next[1].exit({ code: 1, signal: null });
    expect(reply).toEqual([{ ok: false, error: expect.stringMatching(/^reload reverted: worker 1 \(pid \d+\) of generation 2 exited with status 1, 3000 ms into the 10000 ms soak$/) }]);
    expect(phase(w)).toBe('running');
    expect(old.map((x) => x.stops)).toEqual([[], []]);
    expect(next[0].stops).toEqual([['SIGTERM', 7000]]);
    const s = status(w);
    expect(s.generation).toBe(1);
    expect(s.lastReload).toEqual(expect.objectContaining({ ok: false, reverted: true, generation: 2 }));
    expect(w.lines).toContainEqual(expect.stringMatching(/^error reload reverted: .*generation 1 kept serving throughout/));
    // the soak's timer is gone with it: no late commit
    w.clock.advance(60_000);
    expect(status(w).generation).toBe(1);
    expect(old.map((x) => x.stops)).toEqual([[], []]);
  });

  test("an old worker's crash in the soak changes nothing: the reload commits at the end", async () => {
    const { w, reply, old } = await soaking();
    old[0].exit({ code: 1, signal: null });
    expect(reply).toEqual([]);
    w.clock.advance(10_000);
    expect(reply).toEqual([{ ok: true, generation: 2, ms: expect.any(Number) }]);
  });

  test('stopped in the soak: the reload fails, both generations drain', async () => {
    const { w, reply, old, next } = await soaking();
    w.master.post({ kind: 'stop', source: 'test', fast: false });
    expect(reply).toEqual([{ ok: false, error: 'reload failed: the master is stopping' }]);
    expect(phase(w)).toBe('stopping');
    expect([...old, ...next].map((x) => x.stops.length)).toEqual([1, 1, 1, 1]);
  });
});

describe('rolling reload (reload.strategy "rolling")', () => {
  /** Workers alive (not exited) in every generation. */
  const alive = (w: World) => w.launch.workers.filter((x) => !x.exited).length;
  /** Ready the new workers launched so far and exit the old ones told to stop, one step at a time, recording the peak. */
  function drive(w: World, gens: number[], peak: { max: number }, until = () => false): void {
    for (let progress = true; progress && !until(); ) {
      progress = false;
      peak.max = Math.max(peak.max, alive(w));
      for (const g of gens) {
        for (const x of w.launch.of(g)) {
          if (!x.spawned && !x.exited) {
            x.spawn();
            progress = true;
            break;
          }
          if (x.stops.length && !x.exited) {
            x.exit();
            progress = true;
            break;
          }
        }
        if (progress) break;
      }
    }
  }

  test('8 workers, surge 1: slot by slot, never more than 9 alive; the old generation stops worker by worker; the reload answers once all 8 are moved', async () => {
    const w = await running({ count: 8, reload: { strategy: 'rolling', surge: 1 } });
    const reply = reload(w);
    await until('the first new worker to be launched', () => w.launch.of(2).length === 1);
    expect(alive(w)).toBe(9);
    const peak = { max: 0 };
    drive(w, [2, 1], peak);
    expect(peak.max).toBe(9);
    expect(reply).toEqual([{ ok: true, generation: 2, ms: expect.any(Number) }]);
    expect(w.launch.of(2)).toHaveLength(8);
    expect(w.launch.of(1).every((x) => x.exited)).toBe(true);
    expect(status(w).generation).toBe(2);
    expect(phase(w)).toBe('running');
    // the old workers stopped in slot order, each once its replacement was ready
    expect(w.lines.filter((l) => /^info worker \d \(pid \d+\) of generation 1 exited/.test(l)).map((l) => l.split(' ')[2])).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
  });

  test('surge 0: the old worker of a slot stops first; never more than 8 alive', async () => {
    const w = await running({ count: 8, reload: { strategy: 'rolling', surge: 0 } });
    const reply = reload(w);
    await until('the first old worker to be stopped', () => w.launch.of(1)[0].stops.length === 1);
    expect(w.launch.of(2)).toHaveLength(0);
    const peak = { max: 0 };
    drive(w, [1, 2], peak);
    expect(peak.max).toBe(8);
    expect(reply).toEqual([{ ok: true, generation: 2, ms: expect.any(Number) }]);
  });

  test('a failure at slot 5 of 8: slots 0-3 restored to generation 1 one by one (within count + surge), the reload fails with the reason', async () => {
    const w = await running({ count: 8, reload: { strategy: 'rolling', surge: 1 } });
    const reply = reload(w);
    await until('the first new worker to be launched', () => w.launch.of(2).length === 1);
    const peak = { max: 0 };
    drive(w, [2, 1], peak, () => w.launch.of(2).length === 5);
    // slot 4's new worker crashes before it is ready
    const fifth = w.launch.of(2)[4];
    expect(fifth.spawned).toBe(false);
    fifth.exit({ code: 3, signal: null });
    expect(reply).toEqual([]);
    expect(phase(w)).toBe('reloading');
    drive(w, [1, 2], peak);
    expect(peak.max).toBeLessThanOrEqual(9);
    expect(reply).toEqual([{ ok: false, error: expect.stringMatching(/^reload reverted: worker 4 \(pid \d+\) of generation 2 exited with status 3, during the rolling reload \(rolling: 4\/8 slots on generation 2\); slot\(s\) 0, 1, 2, 3 restored to generation 1$/) }]);
    expect(phase(w)).toBe('running');
    const s = status(w);
    expect(s.generation).toBe(1);
    expect(s.generations.map((g) => g.id)).toEqual([1]);
    expect(s.generations[0].workers.map((x) => [x.slot, x.state])).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => [i, 'ready']));
    expect(s.lastReload).toEqual(expect.objectContaining({ ok: false, reverted: true }));
    expect(w.launch.of(2).every((x) => x.exited)).toBe(true);
  });

  test('restoring, an old worker fails too (its config no longer starts): every old slot back at once, the new generation drains, the reload fails naming both', async () => {
    const w = await running({ count: 4, reload: { strategy: 'rolling', surge: 1 } });
    const reply = reload(w);
    await until('the first new worker to be launched', () => w.launch.of(2).length === 1);
    const peak = { max: 0 };
    drive(w, [2, 1], peak, () => w.launch.of(2).length === 3);
    w.launch.of(2)[2].exit({ code: 3, signal: null });
    // the first slot to restore: its old-config worker exits before it is ready
    const restoring = w.launch.of(1).filter((x) => !x.exited && !x.spawned);
    expect(restoring).toHaveLength(1);
    restoring[0].exit({ code: 4, signal: null });
    expect(reply).toEqual([{ ok: false, error: expect.stringMatching(/^reload reverted: worker 2 .* exited with status 3, during the rolling reload .*; restoring slot\(s\) 0, 1 to generation 1 failed too: worker \d \(pid \d+\) of generation 1 exited with status 4$/) }]);
    expect(phase(w)).toBe('running');
    expect(w.launch.of(2).every((x) => x.exited || x.stops.length > 0)).toBe(true);
    // generation 1 holds every slot again (the failed one restarting with backoff)
    w.clock.advance(60_000);
    spawnAll(w.launch.of(1).filter((x) => !x.exited && !x.spawned));
    expect(status(w).generations.find((g) => g.id === 1)!.workers.map((x) => x.slot).sort()).toEqual([0, 1, 2, 3]);
  });

  test('with a soak: a new worker crashing after the roll restores every slot', async () => {
    const w = await running({ count: 3, soakMs: 10_000, reload: { strategy: 'rolling', surge: 1 } });
    const reply = reload(w);
    await until('the first new worker to be launched', () => w.launch.of(2).length === 1);
    const peak = { max: 0 };
    drive(w, [2, 1], peak);
    expect(reply).toEqual([]);
    expect(status(w).soak).toEqual(expect.objectContaining({ of: 'reload', generation: 2 }));
    w.clock.advance(2_000);
    w.launch.of(2)[1].exit({ code: 1, signal: null });
    drive(w, [1, 2], peak);
    expect(reply).toEqual([{ ok: false, error: expect.stringMatching(/^reload reverted: worker 1 .* 2000 ms into the 10000 ms soak; slot\(s\) 0, 1, 2 restored to generation 1$/) }]);
    expect(status(w).generation).toBe(1);
    // no late commit from the soak's timer
    w.clock.advance(20_000);
    expect(status(w).generation).toBe(1);
  });

  test('the first new worker fails (surge 1): nothing was replaced, the reload just fails', async () => {
    const w = await running({ count: 2, reload: { strategy: 'rolling' } });
    const reply = reload(w);
    await until('the first new worker to be launched', () => w.launch.of(2).length === 1);
    w.launch.of(2)[0].exit({ code: 3, signal: null });
    expect(reply).toEqual([{ ok: false, error: expect.stringMatching(/^reload failed: worker 0 .* before it was ready$/) }]);
    expect(w.launch.of(1).map((x) => x.stops)).toEqual([[], []]);
  });

  test('a rolling reload that changes the listeners is refused with the reason', async () => {
    const w = await running({ count: 2, tcp: true, reload: { strategy: 'rolling' } });
    writeConfig(w, { count: 2, listeners: [{ name: 'http', tcp: '127.0.0.1:0' }, { name: 'admin', tcp: '127.0.0.1:0' }], reload: { strategy: 'rolling' } });
    const reply = reload(w);
    await until('the answer', () => reply.length === 1);
    expect(reply).toEqual([{ ok: false, error: expect.stringMatching(/^reload failed: a rolling reload cannot change the listeners \(this config adds 'admin'\)/) }]);
    expect(w.launch.of(2)).toHaveLength(0);
  });
});

describe('reload', () => {
  test('accepted: reloading; a second reload is refused with its reason; ready: running, the old generation drained', async () => {
    const w = await running({ count: 2 });
    const old = w.launch.of(1);
    // the reload reads the file again: generation 2 gets three workers
    writeConfig(w, { count: 3 });
    const first = reload(w);
    expect(phase(w)).toBe('reloading');
    expect(reload(w)).toEqual([{ ok: false, error: 'reload refused: a reload is already under way' }]);
    expect(ask(w, { kind: 'upgrade', source: 'test' })).toEqual([{ ok: false, error: 'upgrade refused: a reload is under way' }]);
    w.master.post({ kind: 'winch' });
    expect(w.lines).toContainEqual('warn SIGWINCH refused: a reload is under way');
    expect(phase(w)).toBe('reloading');

    await until('generation 2 to be launched', () => w.launch.of(2).length === 3);
    expect(first).toEqual([]);
    spawnAll(w.launch.of(2));
    expect(first).toEqual([{ ok: true, generation: 2, ms: expect.any(Number) }]);
    const s = status(w);
    expect(s.phase).toBe('running');
    expect(s.generation).toBe(2);
    expect(s.generations.map((g) => [g.id, g.state, g.count])).toEqual([
      [1, 'draining', 2],
      [2, 'serving', 3],
    ]);
    expect(old.map((x) => x.stops)).toEqual([[['SIGTERM', 7000]], [['SIGTERM', 7000]]]);
    exitAll(old);
    expect(status(w).generations.map((g) => g.id)).toEqual([2]);
    expect(phase(w)).toBe('running');
    expect(status(w).lastReload).toEqual(expect.objectContaining({ ok: true, generation: 2 }));
  });

  test("memory: one full collection a second after the old generation's workers exit, none while idle", async () => {
    const w = await running({ count: 2 });
    w.clock.advance(60_000);
    expect(w.collections).toBe(0);
    const old = w.launch.of(1);
    const done = reload(w);
    await until('generation 2 to be launched', () => w.launch.of(2).length === 2);
    spawnAll(w.launch.of(2));
    expect(done).toEqual([{ ok: true, generation: 2, ms: expect.any(Number) }]);
    exitAll(old);
    w.clock.advance(999);
    expect(w.collections).toBe(0);
    w.clock.advance(1);
    // both exits, one collection
    expect(w.collections).toBe(1);
    w.clock.advance(60_000);
    expect(w.collections).toBe(1);
  });

  test('its generation fails: running again, the old one keeps serving untouched', async () => {
    const w = await running({ count: 2, tcp: true });
    const before = status(w).listeners;
    const replies = reload(w);
    await until('generation 2 to be launched', () => w.launch.of(2).length === 2);
    const [a, b] = w.launch.of(2);
    a.spawn();
    b.exit({ code: 1, signal: null });
    expect(replies).toEqual([{ ok: false, error: `reload failed: worker 1 (pid ${b.pid}) of generation 2 exited with status 1 before it was ready` }]);
    const s = status(w);
    expect(s.phase).toBe('running');
    expect(s.generation).toBe(1);
    expect(s.listeners).toEqual(before);
    expect(s.lastReload).toEqual(expect.objectContaining({ ok: false, generation: 2 }));
    expect(w.launch.of(1).map((x) => x.stops)).toEqual([[], []]);
    expect(a.stops).toEqual([['SIGTERM', 7000]]);
    a.exit();
    expect(status(w).generations.map((g) => [g.id, g.state])).toEqual([[1, 'serving']]);
    // and the next reload works
    const again = reload(w);
    await until('generation 3 to be launched', () => w.launch.of(3).length === 2);
    spawnAll(w.launch.of(3));
    expect(again).toEqual([{ ok: true, generation: 3, ms: expect.any(Number) }]);
  });

  test('a config that no longer loads: refused as a failed reload, nothing launched, running', async () => {
    const w = await running({ count: 1 });
    fs.writeFileSync(w.configFile, '{ not json');
    const replies = reload(w);
    expect(replies).toEqual([{ ok: false, error: expect.stringMatching(/^reload failed: .*invalid JSON/) }]);
    expect(phase(w)).toBe('running');
    await new Promise((r) => setTimeout(r, 20));
    expect(w.launch.workers).toHaveLength(1);
  });

  test('the ready timeout of the new generation (fake time): the reload fails, the old one serves', async () => {
    const w = await running({ count: 1 });
    writeConfig(w, { count: 1, ready: 'notify', readyTimeoutMs: 3000 });
    const replies = reload(w);
    await until('generation 2 to be launched', () => w.launch.of(2).length === 1);
    w.clock.advance(2999);
    expect(phase(w)).toBe('reloading');
    w.clock.advance(1);
    expect(replies).toEqual([{ ok: false, error: expect.stringMatching(/^reload failed: worker 0 .* of generation 2 did not send READY=1 within 3000 ms/) }]);
    expect(status(w)).toEqual(expect.objectContaining({ phase: 'running', generation: 1 }));
    expect(w.launch.of(2)[0].stops).toEqual([['SIGTERM', 7000]]);
  });

  test('a listener dropped from the config closes at the commit, not before; the new generation gets no socket', async () => {
    const w = await running({ count: 1, tcp: true });
    const port = portOf(w);
    writeConfig(w, { count: 1 });
    const replies = reload(w);
    await until('generation 2 to be launched', () => w.launch.of(2).length === 1);
    const [fresh] = w.launch.of(2);
    expect(fresh.spec.fds).toEqual([]);
    expect(fresh.env.LISTEN_FDS).toBeUndefined();
    expect(await connect(port)).toBe('connected');
    fresh.spawn();
    expect(replies).toEqual([expect.objectContaining({ ok: true, generation: 2 })]);
    expect(status(w).listeners).toEqual([]);
    expect(await connect(port)).toBe('ECONNREFUSED');
  });

  test('a new listener that cannot be bound: the reload fails, the held listeners are unchanged', async () => {
    const w = await running({ count: 1, tcp: true });
    const before = status(w).listeners;
    const port = await takenPort();
    fs.writeFileSync(
      w.configFile,
      JSON.stringify({ ...JSON.parse(fs.readFileSync(w.configFile, 'utf8')), listeners: [{ name: 'http', tcp: '127.0.0.1:0' }, { name: 'admin', tcp: `127.0.0.1:${port}` }] }),
    );
    const replies = reload(w);
    await until('the reload to fail', () => replies.length > 0);
    expect(replies).toEqual([{ ok: false, error: expect.stringMatching(/^reload failed: .*EADDRINUSE/) }]);
    expect(status(w)).toEqual(expect.objectContaining({ phase: 'running', generation: 1, listeners: before }));
    expect(w.launch.of(2)).toEqual([]);
  });

  test('over the real control socket: the reply comes once the new generation is ready', async () => {
    const w = await running({ count: 1 });
    const sock = controlSocketPath(w.runtimeDir);
    expect((await request(sock, { cmd: 'status' })) as StatusReply).toEqual(expect.objectContaining({ phase: 'running', generation: 1 }));
    const answer = request(sock, { cmd: 'reload' });
    await until('generation 2 to be launched', () => w.launch.of(2).length === 1);
    expect(await request(sock, { cmd: 'reload' })).toEqual({ ok: false, error: 'reload refused: a reload is already under way' });
    w.launch.of(2)[0].spawn();
    expect(await answer).toEqual({ ok: true, generation: 2, ms: expect.any(Number) });
  });
});

describe('stop', () => {
  test('during a reload: stopping; the reload answered as failed; both generations stopped; exit 0', async () => {
    const w = await running({ count: 1 });
    const reloadReplies = reload(w);
    await until('generation 2 to be launched', () => w.launch.of(2).length === 1);
    const stopReplies = stop(w);
    expect(phase(w)).toBe('stopping');
    expect(stopReplies).toEqual([{ ok: true, pid: process.pid }]);
    expect(reloadReplies).toEqual([{ ok: false, error: 'reload failed: the master is stopping' }]);
    expect(w.launch.of(2)[0].stops[0]).toEqual(['SIGTERM', 7000]);
    expect(w.launch.of(1)[0].stops[0]).toEqual(['SIGTERM', 7000]);
    // a generation-ready of the abandoned reload, had it been queued, is stale now
    w.launch.of(2)[0].spawn();
    expect(phase(w)).toBe('stopping');
    exitAll(w.launch.workers);
    expect(await exitCode(w)).toBe(0);
  });

  test('during a reload that has not launched its generation yet: it never does', async () => {
    const w = await running({ count: 1, tcp: true });
    const reloadReplies = reload(w);
    stop(w);
    expect(reloadReplies).toEqual([{ ok: false, error: 'reload failed: the master is stopping' }]);
    await new Promise((r) => setTimeout(r, 20));
    expect(w.launch.of(2)).toEqual([]);
    exitAll(w.launch.workers);
    expect(await exitCode(w)).toBe(0);
  });

  test('graceful: stopSignal; after the last exit start() resolves 0, control.sock, pidfile and the listener are gone', async () => {
    const w = await running({ count: 2, tcp: true });
    const port = portOf(w);
    const sock = controlSocketPath(w.runtimeDir);
    expect(await request(sock, { cmd: 'stop' })).toEqual({ ok: true, pid: process.pid });
    expect(phase(w)).toBe('stopping');
    expect(reload(w)).toEqual([{ ok: false, error: 'reload refused: the master is stopping' }]);
    const [a, b] = w.launch.of(1);
    expect([a.stops, b.stops]).toEqual([[['SIGTERM', 7000]], [['SIGTERM', 7000]]]);
    a.exit();
    expect(w.code).toBeUndefined();
    expect(fs.existsSync(sock)).toBe(true);
    b.exit();
    expect(await exitCode(w)).toBe(0);
    expect(gone(sock)).toBe(true);
    expect(gone(w.pidfile)).toBe(true);
    expect(await connect(port)).toBe('ECONNREFUSED');
  });

  test('while the only worker waits for its restart: the stop ends at once and once, the restart never comes', async () => {
    const w = await running({ count: 1 });
    w.launch.of(1)[0].exit({ code: 1, signal: null });
    stop(w);
    expect(await exitCode(w)).toBe(0);
    // the pool says pool-empty twice here (see pool.test.ts); the stop is finished once
    expect(w.lines.filter((l) => l === 'info stopped')).toEqual(['info stopped']);
    w.clock.advance(60_000);
    expect(w.launch.workers).toHaveLength(1);
    expect(gone(w.pidfile)).toBe(true);
  });

  test('a fast stop while stopping gracefully kills at once, once', async () => {
    const w = await running({ count: 2 });
    stop(w);
    const ws = w.launch.of(1);
    expect(ws.map((x) => x.stops)).toEqual([[['SIGTERM', 7000]], [['SIGTERM', 7000]]]);
    expect(stop(w, true)).toEqual([{ ok: true, pid: process.pid }]);
    for (const x of ws) expect(x.stops.slice(1).every(([sig, ms]) => sig === 'SIGKILL' && ms === 0) && x.stops.length > 1).toBe(true);
    const after = ws.map((x) => x.stops.length);
    stop(w, true);
    stop(w, false);
    expect(ws.map((x) => x.stops.length)).toEqual(after);
    expect(phase(w)).toBe('stopping');
    exitAll(ws);
    expect(await exitCode(w)).toBe(0);
  });

  test('fast from the start (INT): SIGKILL, no stopSignal first', async () => {
    const w = await running({ count: 1 });
    stop(w, true);
    expect(w.launch.of(1)[0].stops).toEqual([['SIGKILL', 0]]);
    exitAll(w.launch.workers);
    expect(await exitCode(w)).toBe(0);
  });
});

describe('status', () => {
  test("a worker's uptime is read on the master's clock", async () => {
    const w = await running({ count: 1 });
    expect(status(w).generations[0].workers[0].uptimeMs).toBe(0);
    w.clock.advance(5000);
    expect(status(w).generations[0].workers[0].uptimeMs).toBe(5000);
  });
});

describe("status: what each worker costs, its slot's last exit, slots in backoff", () => {
  /** A fake /proc: each pid's group figures, set by the test; the master's own likewise. */
  function fakeSampler() {
    const groups = new Map<number, GroupSample>();
    const self = { rssBytes: 40 * 2 ** 20, cpuSeconds: 0 };
    const sampler: Sampler = { groups: (pgids) => new Map(pgids.filter((p) => groups.has(p)).map((p) => [p, groups.get(p)!])), self: () => self };
    const set = (pid: number, cpuTicks: number, processes = 2) => groups.set(pid, { pgid: pid, processes, rssBytes: 30 * 2 ** 20, pssBytes: 12 * 2 ** 20, cpuTicks });
    return { sampler, groups, self, set };
  }

  test("memory and processes of the worker's group; CPU percent since its start, then since the previous status at least 1 s before", async () => {
    const f = fakeSampler();
    const w = await running({ count: 1, sampler: f.sampler });
    const pid = w.launch.of(1)[0].pid;
    f.set(pid, 100);
    w.clock.advance(2000);
    let s = status(w).generations[0].workers[0];
    expect(s.memory).toEqual({ rssBytes: 30 * 2 ** 20, pssBytes: 12 * 2 ** 20, processes: 2 });
    // 1 s of CPU in its 2 s
    expect(s.cpu).toEqual({ percent: 50, seconds: 1 });
    f.set(pid, 190);
    w.clock.advance(500);
    // 0.9 s in 0.5 s since the last baseline, which stays (too recent to replace)
    expect(status(w).generations[0].workers[0].cpu).toEqual({ percent: 180, seconds: 1.9 });
    w.clock.advance(500);
    expect(status(w).generations[0].workers[0].cpu).toEqual({ percent: 90, seconds: 1.9 });
    f.set(pid, 215);
    w.clock.advance(1000);
    expect(status(w).generations[0].workers[0].cpu).toEqual({ percent: 25, seconds: 2.15 });
    // a group gone a moment ago: no figures rather than zeros
    f.groups.clear();
    s = status(w).generations[0].workers[0];
    expect(s.memory).toBeUndefined();
    expect(s.cpu).toBeUndefined();
  });

  test("the master's own memory and CPU", async () => {
    const f = fakeSampler();
    const w = await running({ count: 1, sampler: f.sampler });
    w.clock.advance(10_000);
    f.self.cpuSeconds = 0.5;
    expect(status(w).master).toEqual({ rssBytes: 40 * 2 ** 20, cpuPercent: 5, cpuSeconds: 0.5 });
  });

  test('a slot waiting out its crash backoff is shown with its next start and last exit; its next worker shows that exit', async () => {
    const w = await running({ count: 2 });
    w.clock.advance(1000);
    // the first crash restarts at once; the second in a row waits 100 ms
    w.launch.of(1)[0].exit({ code: 1, signal: null });
    w.clock.advance(0);
    const crashedAt = w.clock.now();
    w.launch.of(1)[2].exit({ code: null, signal: 'SIGSEGV' });
    const g = status(w).generations[0];
    expect(g.workers.map((x) => x.slot)).toEqual([1]);
    const lastExit = { code: null, signal: 'SIGSEGV', at: new Date(crashedAt).toISOString(), why: 'crash' };
    expect(g.backoff).toEqual([{ slot: 0, nextStartAt: new Date(crashedAt + 100).toISOString(), lastExit }]);
    w.clock.advance(100);
    const after = status(w).generations[0];
    expect(after.backoff).toEqual([]);
    expect(after.workers.map((x) => [x.slot, x.restarts, x.lastExit])).toEqual([[0, 2, lastExit], [1, 0, undefined]]);
  });

  test('why: a TTOU stop is resize; a reload is reload, shown on the next generation\'s worker of the slot', async () => {
    const w = await running({ count: 1 });
    w.master.post({ kind: 'resize', delta: 1 });
    w.launch.of(1)[1].spawn();
    w.master.post({ kind: 'resize', delta: -1 });
    w.launch.of(1)[1].exit({ code: null, signal: 'SIGTERM' });
    w.master.post({ kind: 'resize', delta: 1 });
    expect(status(w).generations[0].workers[1].lastExit).toEqual(expect.objectContaining({ why: 'resize', signal: 'SIGTERM' }));
    reload(w);
    await until('generation 2 to be launched', () => w.launch.of(2).length === 1);
    spawnAll(w.launch.of(2));
    exitAll(w.launch.of(1));
    expect(status(w).generations.map((g) => g.workers.map((x) => x.lastExit?.why))).toEqual([['reload']]);
  });
});

describe('WINCH, TTIN/TTOU, USR1, crashes', () => {
  test('WINCH stops the workers and keeps the sockets; stop with nothing running ends at once', async () => {
    const w = await running({ count: 1 });
    w.master.post({ kind: 'winch' });
    expect(status(w).generation).toBeNull();
    w.master.post({ kind: 'resize', delta: 1 });
    expect(w.lines).toContainEqual('warn SIGTTIN refused: no generation is serving');
    exitAll(w.launch.workers);
    expect(status(w).generations).toEqual([]);
    expect(phase(w)).toBe('running');
    stop(w);
    expect(await exitCode(w)).toBe(0);
  });

  test('USR1 reopens the log in every phase', async () => {
    const w = await startMaster({ count: 1 });
    w.master.post({ kind: 'reopen-logs' });
    spawnAll(w.launch.of(1));
    stop(w);
    w.master.post({ kind: 'reopen-logs' });
    expect(w.lines.filter((l) => l === 'reopened')).toHaveLength(2);
  });

  test('TTIN starts one more worker, TTOU stops one; never below one', async () => {
    const w = await running({ count: 1 });
    w.master.post({ kind: 'resize', delta: 1 });
    expect(w.launch.of(1)).toHaveLength(2);
    w.launch.of(1)[1].spawn();
    expect(status(w).generations[0].count).toBe(2);
    w.master.post({ kind: 'resize', delta: -1 });
    expect(w.launch.of(1)[1].stops).toEqual([['SIGTERM', 7000]]);
    w.master.post({ kind: 'resize', delta: -1 });
    expect(w.lines).toContainEqual('warn SIGTTOU refused: generation 1 is down to one worker');
    expect(status(w).generations[0].count).toBe(1);
  });

  test('a crash while running restarts the slot after the backoff delay (fake time)', async () => {
    const w = await running({ count: 1 });
    w.launch.of(1)[0].exit({ code: 1, signal: null });
    w.clock.advance(0);
    expect(w.launch.of(1)).toHaveLength(2);
    w.launch.of(1)[1].exit({ code: 1, signal: null });
    w.clock.advance(99);
    expect(w.launch.of(1)).toHaveLength(2);
    w.clock.advance(1);
    expect(w.launch.of(1)).toHaveLength(3);
    expect(phase(w)).toBe('running');
  });
});

describe('recycling (workers.maxAgeMs, workers.maxMemory): recycle-due per phase', () => {
  const ages = { maxAgeMs: 60_000, maxAgeJitterMs: 0, sampleIntervalMs: 1000 };
  const rows = (s: StatusReply, id = 1) => s.generations.find((g) => g.id === id)!.workers.map((x) => [x.slot, x.pid, x.state, x.recycling]);

  test('running: the generation recycles the worker, replacement first; the old one gets stopSignal once the replacement is ready; status counts it', async () => {
    const w = await running({ count: 2, workers: ages });
    const [a, b] = w.launch.of(1);
    w.clock.advance(60_000);
    const next = w.launch.of(1)[2];
    expect(next.env.BATON_WORKER_ID).toBe('0');
    expect(rows(status(w))).toEqual([[0, a.pid, 'ready', 'age'], [0, next.pid, 'starting', undefined], [1, b.pid, 'ready', undefined]]);
    expect(a.stops).toEqual([]);
    next.spawn();
    expect(distinct(a.stops)).toEqual([['SIGTERM', 7000]]);
    const s = status(w);
    expect(s.generations[0].recycles).toEqual({ memory: 0, age: 1 });
    expect(s.statusLine).toBe('generation 1: 2/2 workers ready');
    // the one slot 1 asks for comes once the first is over (maxRecycling 1)
    w.clock.advance(1000);
    expect(w.launch.of(1)).toHaveLength(4);
  });

  test('memory, with the master\'s sampler: over maxMemory in maxMemorySamples checks in a row', async () => {
    const w = await running({ count: 1, workers: { maxMemory: '100M', maxMemorySamples: 2, sampleIntervalMs: 1000 } });
    const [a] = w.launch.of(1);
    w.memory.set(a.pid, 101 * 2 ** 20);
    w.clock.advance(1000);
    expect(w.launch.of(1)).toHaveLength(1);
    w.clock.advance(1000);
    expect(w.launch.of(1)).toHaveLength(2);
    expect(rows(status(w))[0]).toEqual([0, a.pid, 'ready', 'memory']);
  });

  test('reloading: recycle-due waits (logged at debug level); the reload fails, and the next check recycles', async () => {
    const w = await running({ count: 1, workers: ages });
    w.clock.advance(59_000);
    reload(w);
    await until('generation 2 to be launched', () => w.launch.of(2).length === 1);
    w.clock.advance(2000);
    expect(phase(w)).toBe('reloading');
    expect(w.launch.of(1)).toHaveLength(1);
    expect(w.lines).toContainEqual(`debug worker 0 (pid ${w.launch.of(1)[0].pid}) of generation 1 is due for recycling (age): not while reloading`);
    w.launch.of(2)[0].exit({ code: 1, signal: null });
    expect(phase(w)).toBe('running');
    w.clock.advance(1000);
    expect(w.launch.of(1)).toHaveLength(2);
  });

  test('a reload to a maxMemory without its unit is refused naming the key; the generation serves on', async () => {
    const w = await running({ count: 1 });
    writeConfig(w, { count: 1, workers: { maxMemory: 512 } });
    const replies = reload(w);
    await until('the reload to be answered', () => replies.length === 1);
    expect(replies[0]).toEqual({ ok: false, error: expect.stringContaining('/workers/maxMemory: must be a size with its unit, a number followed by K, M or G (1024-based), such as "512M"') });
    expect(phase(w)).toBe('running');
    expect(w.launch.workers).toHaveLength(1);
  });

  test('stopping: nothing is recycled, the drained generation asks no more', async () => {
    const w = await running({ count: 1, workers: ages });
    stop(w);
    w.clock.advance(120_000);
    expect(w.launch.workers).toHaveLength(1);
    exitAll(w.launch.workers);
    expect(await exitCode(w)).toBe(0);
  });
});
