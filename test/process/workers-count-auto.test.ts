// workers.count "auto" (issue 24 item 4): check, run and reload give one worker per CPU baton may
// run on, as nproc counts them (the affinity mask), bounded by a cgroup v2 cpu.max quota.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BATON, baton, cleanupAll, IS_ROOT, ready, startMaster, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

/** Runs argv (optionally inside `wrapper`, such as taskset -c 0) and returns its stdout; throws unless it exits 0. */
function run(argv: string[], wrapper: string[] = []): string {
  const all = [...wrapper, ...argv];
  const r = spawnSync(all[0], all.slice(1), { encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0) throw new Error(`${all.join(' ')}: exit ${r.status ?? r.signal}: ${r.stderr}`);
  return r.stdout;
}

/** The worker count `baton check` says "auto" gave, and the text explaining it. */
function checked(file: string, wrapper: string[] = []): { count: number; how: string } {
  const out = run([process.execPath, BATON, 'check', '-c', file], wrapper);
  const m = /is valid: (\d+) x \["sleep","1000"\] \(workers\.count "auto": (.+)\), listeners: every inherited socket\n$/.exec(out);
  if (!m) throw new Error(`unexpected check output: ${out}`);
  return { count: Number(m[1]), how: m[2] };
}

const AUTO = { workers: { command: ['sleep', '1000'], count: 'auto', ready: 'spawn', stopTimeoutMs: 5000 } };
const NPROC = Number(run(['nproc']));

describe('workers.count "auto"', () => {
  let m: Master | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await cleanupAll(m, dir);
    [m, dir] = [undefined, undefined];
  });

  test('check says the number nproc prints, here and under taskset -c 0 (1)', () => {
    dir = tmpdir();
    const f = writeConfig(dir, AUTO);
    const here = checked(f);
    expect(here.count).toBe(NPROC);
    expect(here.how).toMatch(new RegExp(`^${NPROC} CPUs?, affinity \\S+, cgroup quota `));
    expect(Number(run(['nproc'], ['taskset', '-c', '0']))).toBe(1);
    expect(checked(f, ['taskset', '-c', '0'])).toEqual({ count: 1, how: expect.stringMatching(/^1 CPU, affinity 0, cgroup quota /) });
  });

  test('anything else is refused, naming the key and what it may be', () => {
    dir = tmpdir();
    for (const count of ['max', 2.5, '4', true]) {
      const r = baton(['check', '-c', writeConfig(dir, { workers: { command: ['sleep', '1'], count } })]);
      expect([count, r.code]).toEqual([count, 78]);
      expect(r.stderr).toContain('/workers/count: must be an integer from 1 to 1024, or "auto"');
    }
  });

  test('status shows "auto" and what it gave; a reload finds it again (the affinity widened), TTIN still adds one', async () => {
    dir = tmpdir();
    m = startMaster(writeConfig(dir, AUTO), { wrapper: ['taskset', '-c', '0'] });
    const s = await ready(m);
    expect(s.workers).toEqual({ count: 'auto', resolved: 1, auto: expect.stringMatching(/^1 CPU, affinity 0, cgroup quota /) });
    expect(s.generations[0].count).toBe(1);
    expect(baton(['status', '-c', m.config]).stdout).toMatch(/\n {2}workers {4}count: 1 \(auto: 1 CPU, affinity 0, cgroup quota [^\n]+\)\n/);
    if (NPROC < 2) return console.warn(`workers-count-auto.test.ts: the reload part is SKIPPED: nproc is ${NPROC}, no affinity to widen`);

    // every thread of the master: the new generation's count is read by the main one
    run(['taskset', '-a', '-p', '-c', `0-${NPROC - 1}`, String(m.pid)]);
    const r = baton(['reload', '-c', m.config]);
    expect(r.code).toBe(0);
    const after = await m.status();
    expect(after.generation).toBe(2);
    expect(after.generations.find((g) => g.id === 2)!.count).toBe(NPROC);
    expect(after.workers).toMatchObject({ count: 'auto', resolved: NPROC });
    expect(m.output()).toMatch(new RegExp(`starting generation 2: ${NPROC} x \\["sleep","1000"\\] \\(workers\\.count "auto": ${NPROC} CPUs, affinity 0-${NPROC - 1}, `));
    m.proc.kill('SIGTTIN');
    await waitFor('TTIN', async () => (await m!.status()).generations.find((g) => g.id === 2)!.count === NPROC + 1);
  });

  const noCgroup = cgroupV2Problem();
  (noCgroup ? test.skip : test)(`under a cgroup v2 cpu.max quota: 0.5 CPU gives 1, 1.5 CPUs give 2${noCgroup ? ` [SKIPPED: ${noCgroup}]` : ''}`, () => {
    dir = tmpdir();
    const f = writeConfig(dir, AUTO);
    const cg = fs.mkdtempSync('/sys/fs/cgroup/baton-test-');
    try {
      // sh moves itself into the cgroup, then becomes baton check
      const inCgroup = ['sh', '-c', `echo $$ > ${cg}/cgroup.procs && exec "$@"`, 'sh'];
      fs.writeFileSync(path.join(cg, 'cpu.max'), '50000 100000');
      expect(checked(f, inCgroup)).toEqual({ count: 1, how: expect.stringContaining(`cgroup quota 0.5 CPU (${cg}/cpu.max): less than one CPU, still 1 worker`) });
      fs.writeFileSync(path.join(cg, 'cpu.max'), '150000 100000');
      expect(checked(f, inCgroup)).toEqual({ count: Math.min(2, NPROC), how: expect.stringContaining(`cgroup quota 1.5 CPU (${cg}/cpu.max)`) });
    } finally {
      fs.rmdirSync(cg); // its processes have exited: an empty cgroup can go
    }
  });
});

/** Why a cgroup with a cpu.max cannot be made here; undefined when it can. */
function cgroupV2Problem(): string | undefined {
  if (!IS_ROOT) return 'needs root';
  let controllers: string;
  try {
    controllers = fs.readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8');
  } catch {
    return 'no cgroup v2 mounted at /sys/fs/cgroup (cgroup v1 or a hybrid host)';
  }
  if (!controllers.split(/\s+/).includes('cpu')) return "cgroup v2's cpu controller is not available at /sys/fs/cgroup (bound to cgroup v1?)";
  try {
    fs.writeFileSync('/sys/fs/cgroup/cgroup.subtree_control', '+cpu');
  } catch (e) {
    return `cannot enable the cpu controller for /sys/fs/cgroup's children: ${(e as Error).message}`;
  }
  return undefined;
}
