// Recycling real workers (workers.maxMemory, workers.maxAgeMs) under load: the replacement
// first, the old worker drains once it is ready, never more than maxRecycling at once, and no
// request fails. The order is read from the master's log: READY=1 of the replacement, then
// STOPPING=1 of the old worker (its adapter sends it as it stops accepting).
import path from 'node:path';
import type { StatusReply } from '../../src/contract/control';
import { flowing, startLoad, type Load } from '../helpers/load';
import { baton, cleanup, FIXTURES, get, portOf, ready, startMaster, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

const APP = (name: string) => [process.execPath, path.join(FIXTURES, 'unmodified', name)];

/** One recycle as the log tells it: the slot, the old and new pids, and the log line numbers of what happened. */
interface Told {
  slot: number;
  old: number;
  next: number;
  why: string;
  begun: number;
  nextReady?: number;
  committed?: number;
  oldStopping?: number;
  failed?: number;
}

function recyclesInLog(out: string): Told[] {
  const lines = out.split('\n');
  const all: Told[] = [];
  lines.forEach((l, i) => {
    const b = /recycling worker (\d+) \(pid (\d+)\) of generation \d+ \((memory|age): .*\): its replacement is pid (\d+)/.exec(l);
    if (b) all.push({ slot: Number(b[1]), old: Number(b[2]), why: b[3], next: Number(b[4]), begun: i });
  });
  const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
  for (const r of all) {
    r.nextReady = at(new RegExp(`worker ${r.slot} \\(pid ${r.next}\\) of generation \\d+ ready in`));
    r.committed = at(new RegExp(`worker ${r.slot} \\(pid ${r.old}\\) of generation \\d+ recycled \\(`));
    r.oldStopping = at(new RegExp(`worker ${r.slot} \\(pid ${r.old}\\) of generation \\d+ is stopping`));
    r.failed = at(new RegExp(`recycling worker ${r.slot} \\(pid ${r.old}\\) of generation \\d+ \\(\\w+\\) failed`));
  }
  return all;
}

/** The most recycles under way at once, by the log: each from its start to its commit (or failure). */
function mostAtOnce(told: Told[]): number {
  const marks = told.flatMap((r) => [
    { at: r.begun, d: 1 },
    { at: [r.committed, r.failed].filter((x): x is number => x !== undefined && x >= 0).sort((a, b) => a - b)[0] ?? Infinity, d: -1 },
  ]);
  marks.sort((a, b) => a.at - b.at || a.d - b.d);
  let n = 0;
  let most = 0;
  for (const m of marks) most = Math.max(most, (n += m.d));
  return most;
}

const recycles = (s: StatusReply) => s.generations.find((g) => g.id === s.generation)?.recycles ?? { memory: 0, age: 0 };

describe('recycling real workers under load', () => {
  let m: Master | undefined;
  let load: Load | undefined;
  afterEach(async () => {
    // a test that failed on the way leaves its load generator running: stopped, whatever it says
    await load?.stop().catch(() => undefined);
    await cleanup(m);
  });

  const HTTP = [{ name: 'http', tcp: '127.0.0.1:0' }];

  /** A master of the fixture app `app` with these workers keys, serving under keep-alive and new-connection load. */
  async function underLoad(name: string, app: string, workers: Record<string, unknown>): Promise<Master> {
    const cfg = { name, listeners: HTTP, log: { level: 'debug' }, workers: { command: APP(app), readyTimeoutMs: 15000, stopTimeoutMs: 10000, ...workers } };
    m = startMaster(writeConfig(tmpdir(), cfg));
    const s0 = await ready(m);
    load = startLoad(portOf(s0), 4, 4);
    await flowing(load);
    return m;
  }

  test('memory: a Node app that keeps 200 KB per request is recycled at least 3 times, 0 failed; each replacement was ready before the old one stopped accepting', async () => {
    const master = await underLoad('recycle-memory', 'leaking-app.js', { count: 2, maxMemory: '150M', maxMemorySamples: 2, sampleIntervalMs: 250 });
    await waitFor('3 memory recycles', async () => recycles(await master.status()).memory >= 3, 90000, 200);
    // the last old workers finish what they hold while the load goes on
    await flowing(load!, 200);
    const stats = await load!.finish(100);
    const told = recyclesInLog(master.output()).filter((r) => r.committed! >= 0);
    console.log(
      `memory recycles: ${told.length} under load; ${stats.ok} requests answered (keep-alive ${stats.keepalive.ok}, new connections ${stats.fresh.ok}), ${stats.failed} failed\n` +
        master.output().split('\n').filter((l) => / recycl/.test(l)).slice(0, 4).join('\n'),
    );
    expect(told.length).toBeGreaterThanOrEqual(3);
    expect(told.every((r) => r.why === 'memory')).toBe(true);
    for (const r of told.slice(0, 3)) {
      // READY=1 of the replacement, then the old worker told to stop, then its STOPPING=1
      expect({ slot: r.slot, order: [r.begun, r.nextReady, r.committed, r.oldStopping].map((x) => x! >= 0) }).toEqual({ slot: r.slot, order: [true, true, true, true] });
      expect(r.nextReady!).toBeGreaterThan(r.begun);
      expect(r.oldStopping!).toBeGreaterThan(r.nextReady!);
    }
    // the replacements served: requests were answered by more pids than the first two
    expect(Object.keys(stats.pids).length).toBeGreaterThan(2);
    // status: the slots' last exits say why (once the old workers are gone)
    await waitFor('the recycled workers to exit', async () => (await master.status()).generations[0].workers.some((w) => w.lastExit?.why === 'memory'), 20000);
  }, 150_000);

  test('age: 4 workers with maxAgeMs + jitter recycle one at a time, each replacement first, 0 failed', async () => {
    const master = await underLoad('recycle-age', 'http-app.js', { count: 4, maxAgeMs: 4000, maxAgeJitterMs: 2000, sampleIntervalMs: 100 });
    // the status on the way: never more than one worker recycling, never more than 4 + 1 starting or ready
    const since = Date.now();
    let mostRecycling = 0;
    let mostUp = 0;
    await waitFor(
      '8 age recycles',
      async () => {
        const s = await master.status();
        const g = s.generations.find((x) => x.id === s.generation)!;
        mostRecycling = Math.max(mostRecycling, g.workers.filter((w) => w.recycling).length);
        mostUp = Math.max(mostUp, g.workers.filter((w) => w.state !== 'stopping').length);
        return recycles(s).age >= 8;
      },
      90000,
      50,
    );
    const stats = await load!.finish(100);
    const told = recyclesInLog(master.output());
    console.log(
      `age recycles: ${told.length} of 4 workers in ${((Date.now() - since) / 1000).toFixed(1)} s; most under way at once: ${mostAtOnce(told)}; ` +
        `${stats.ok} requests answered (keep-alive ${stats.keepalive.ok}, new connections ${stats.fresh.ok}), ${stats.failed} failed`,
    );
    expect(told.filter((r) => r.committed! >= 0).length).toBeGreaterThanOrEqual(8);
    expect(told.every((r) => r.why === 'age')).toBe(true);
    expect(mostAtOnce(told)).toBe(1);
    expect(mostRecycling).toBeLessThanOrEqual(1);
    expect(mostUp).toBeLessThanOrEqual(5);
    for (const r of told.filter((x) => x.committed! >= 0)) expect(r.oldStopping!).toBeGreaterThan(r.nextReady!);
    // every slot was recycled
    expect(new Set(told.map((r) => r.slot))).toEqual(new Set([0, 1, 2, 3]));
  }, 150_000);

  test('a limit below what a worker needs: a reload to it fails saying so, the workers serve on; `baton check` refuses a size without its unit', async () => {
    const dir = tmpdir();
    const workers = { command: APP('http-app.js'), count: 1 };
    const cfg = writeConfig(dir, { name: 'recycle-limit', listeners: HTTP, workers });
    m = startMaster(cfg);
    const s0 = await ready(m);
    writeConfig(dir, { name: 'recycle-limit', listeners: HTTP, workers: { ...workers, maxMemory: '1M' } });
    const r = baton(['reload', '-c', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /reload failed: worker 0 \(pid \d+\) of generation 2 uses PSS \d+\.\d MiB as it gets ready, over workers\.maxMemory \(1\.0 MiB\): the limit is below what a worker needs/,
    );
    const s1 = await m.status();
    expect(s1.generation).toBe(1);
    expect(s1.generations.map((g) => [g.id, g.workers.map((w) => w.pid)])).toContainEqual([1, s0.generations[0].workers.map((w) => w.pid)]);
    expect((await get(portOf(s0))).status).toBe(200);
    const bare = writeConfig(dir, { workers: { ...workers, maxMemory: 512 } }, 'bare.json');
    const c = baton(['check', '-c', bare]);
    expect(c.code).toBe(78);
    expect(c.stderr).toContain('/workers/maxMemory: must be a size with its unit, a number followed by K, M or G (1024-based), such as "512M"; a bare number is refused');
  }, 60_000);
});
