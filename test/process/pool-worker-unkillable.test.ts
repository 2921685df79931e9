// A member of a worker's process group that baton cannot kill no longer keeps the worker
// `stopping` for good (no restart, no end to a drain or a stop). Made for real: the master runs
// as a uid of its own, and the worker runs a setuid-root helper that makes itself root for good, so the
// master's SIGKILL to the group gets EPERM for it. After KILL_GRACE_MS the pids are named and
// the worker counts as gone. Acting as two users needs root.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { processInfo } from '../../src/system/process';
import {
  cleanup,
  FIXTURES,
  forAnyone,
  IS_ROOT,
  isAlive,
  ready,
  rootOnly,
  startMaster,
  tmpdir,
  waitFor,
  workerPids,
  writeConfig,
  type Master,
} from '../helpers/proc';


/**
 * A uid and gid that nothing on this machine uses: the master runs as it, and only it may run
 * the setuid-root helper (mode 04710, group this gid, in a folder 0710), so no other local
 * user can use the helper to become root while the test runs.
 */
function unusedId(): number {
  for (let id = 61000 + (process.pid % 3000); ; id++) {
    if (spawnSync('getent', ['passwd', String(id)]).status !== 0 && spawnSync('getent', ['group', String(id)]).status !== 0) return id;
  }
}
const OWN_ID = IS_ROOT ? unusedId() : 65534;
if (!IS_ROOT) console.warn('worker-unkillable.test.ts: SKIPPED: a master as nobody and a worker child as root need root');

/** Runs the master as that uid. */
const AS_OWN_ID = ['setpriv', `--reuid=${OWN_ID}`, `--regid=${OWN_ID}`, '--clear-groups'];

/** The real uid of a running process. */
const uidOf = (pid: number) => processInfo(pid)?.uid;

/** The master's exit, or 'still running' after `ms`. */
async function exitWithin(m: Master, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise((r) => (timer = setTimeout(() => r('still running'), ms)));
  try {
    return await Promise.race([m.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

rootOnly('a worker whose process group holds a process baton cannot kill', () => {
  let helperDir: string;
  let helper: string;
  let dir: string | undefined;
  let m: Master | undefined;
  /** The root processes a test made: nobody else can kill them. */
  const roots: number[] = [];

  beforeAll(() => {
    helperDir = tmpdir();
    helper = path.join(helperDir, 'become-root');
    execFileSync('gcc', ['-O2', '-o', helper, path.join(FIXTURES, 'become-root.c')]);
    fs.chownSync(helper, 0, OWN_ID);
    fs.chmodSync(helper, 0o4710);
    fs.chownSync(helperDir, 0, OWN_ID);
    fs.chmodSync(helperDir, 0o710);
  });
  afterAll(() => fs.rmSync(helperDir, { recursive: true, force: true }));

  afterEach(async () => {
    await cleanup(m);
    m = undefined;
    for (const f of dir ? fs.readdirSync(dir).filter((x) => x.startsWith('root.')) : []) roots.push(Number(fs.readFileSync(path.join(dir!, f), 'utf8')));
    for (const pid of roots.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  function start(command: string[]): Master {
    dir = tmpdir();
    fs.chownSync(dir, OWN_ID, OWN_ID);
    const cfg = writeConfig(dir, { name: 'unkillable', workers: { command, ready: 'spawn', stopTimeoutMs: 1000 } });
    return startMaster(cfg, { wrapper: AS_OWN_ID, ...forAnyone() });
  }

  /** The pid the root process wrote to root.<n> (it writes it once it is root). */
  async function rootPid(n: number): Promise<number> {
    const f = path.join(dir!, `root.${n}`);
    const pid = await waitFor(`root.${n}`, () => {
      const t = fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim() : '';
      return /^\d+$/.test(t) ? Number(t) : undefined;
    });
    expect(uidOf(pid)).toBe(0);
    return pid;
  }

  /** sh that starts, in its own process group, a child that becomes root and sleeps; the child's pid goes to root.1. */
  const withRootChild = (then: string) => [
    'sh',
    '-c',
    `if [ ! -e root.1 ]; then "$0" sh -c 'echo $$ > root.1; exec sleep 600' & until [ -s root.1 ]; do sleep 0.05; done; ${then}; fi; exec sleep 600`,
  ];

  test('crash: the child is named at error level, and the slot restarts anyway', async () => {
    const cmd = withRootChild('exit 3');
    m = start([...cmd, helper]);
    const child = await rootPid(1);
    const [line] = await m.waitForOutput(new RegExp(`.*pid\\(s\\) ${child} still running 3000 ms after SIGKILL.*`), 15000);
    expect(line).toMatch(/ error /);
    await m.waitForOutput(/exited with status 3; restarting slot 0/, 15000);
    await waitFor('slot 0 restarted', async () => (await m!.status()).generations[0]?.workers.some((w) => w.restarts === 1 && w.state === 'ready'));
    // it was real: the child was out of the master's reach all along
    expect(isAlive(child)).toBe(true);
  });

  test('stop: the master exits after the deadline and the grace, naming the child', async () => {
    // the worker's sh dies of SIGTERM; its root child ignores everything the master sends
    m = start([...withRootChild('wait'), helper]);
    await ready(m);
    const child = await rootPid(1);
    m.proc.kill('SIGTERM');
    expect(await exitWithin(m, 15000)).toEqual({ code: 0, signal: null });
    expect(m.output()).toMatch(new RegExp(`pid\\(s\\) ${child} still running 3000 ms after SIGKILL`));
    expect(isAlive(child)).toBe(true);
  });

  test("stop: a worker that itself became root is given up on, and the master exits", async () => {
    m = start([helper, 'sleep', '600']);
    const [pid] = workerPids(await ready(m));
    roots.push(pid);
    await waitFor('the worker to become root', () => uidOf(pid) === 0);
    m.proc.kill('SIGTERM');
    expect(await exitWithin(m, 15000)).toEqual({ code: 0, signal: null });
    expect(m.output()).toMatch(new RegExp(`worker 0 \\(pid ${pid}\\) of generation 1: pid\\(s\\) ${pid} still running 3000 ms after SIGKILL`));
    expect(m.output()).toMatch(/did not die of SIGKILL \(another uid, or stuck in the kernel\): given up on/);
    expect(isAlive(pid)).toBe(true);
  });
});
