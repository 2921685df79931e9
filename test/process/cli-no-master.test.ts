// "No master" says why (issue 26): a config file that does not exist, a master of another user
// (root's: sudo forgotten), a master started with this config file under another name, a stale
// pidfile; and the instance shorthand (`baton status api` for /etc/baton/api.json).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { instanceFile } from '../../src/cli/instance';
import { baton, cleanup, forAnyone, IS_ROOT, NOBODY, nodeWorker, ready, startMaster, tmpdir, writeConfig, type Master } from '../helpers/proc';

/** The process group of `pid` (/proc/PID/stat), or undefined once it is gone. */
function groupOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return undefined;
  }
}

describe('no master: why', () => {
  let m: Master | undefined;
  afterEach(() => cleanup(m));

  test('a config file that does not exist: exit 3, and it says so (a path and an instance alike)', () => {
    const r = baton(['status', '-c', '/nonexistent/api.json']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/no baton master is running for \/nonexistent\/api.json .*\n {2}the config file \/nonexistent\/api.json does not exist: give the file the master was started with/);
    // reload, upgrade and stop exit 1 for no master (docs/contract.md, "Command line")
    const i = baton(['reload', 'nosuch-instance-xyz']);
    expect(i.code).toBe(1);
    expect(i.stderr).toContain('the config file /etc/baton/nosuch-instance-xyz.json does not exist');
  });

  test("`name` changed in the config since the master started: it names the master's pid and where its control socket is", async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, { name: 'before', listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: nodeWorker(), count: 1 } });
    m = startMaster(cfg);
    await ready(m);
    const wasAt = path.join((await m.status()).config ? JSON.parse(fs.readFileSync(cfg, 'utf8')).runtimeDir : '', 'control.sock');
    writeConfig(dir, { ...JSON.parse(fs.readFileSync(cfg, 'utf8')), name: 'after', runtimeDir: path.join(dir, 'run-after') });
    for (const cmd of ['status', 'reload', 'stop']) {
      const r = baton([cmd, '-c', cfg]);
      expect({ cmd, code: r.code }).toEqual({ cmd, code: cmd === 'status' ? 3 : 1 });
      expect(r.stderr).toContain(`pid ${m.pid} runs \`baton run\` with this config file, but not where it now says (${path.join(dir, 'run-after')}): were \`name\` or \`runtimeDir\` changed since it started? its control socket is ${wasAt}`);
    }
    // the master was never touched
    expect((await m.status()).phase).toBe('running');
  });

  test('a stale pidfile (a master killed with SIGKILL): says so', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, { name: 'stale', listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: nodeWorker(), count: 1 } });
    m = startMaster(cfg);
    const s = await ready(m);
    m.proc.kill('SIGKILL');
    await m.exited;
    // its workers outlive it: their process groups go (each worker leads its own)
    for (const pid of s.generations.flatMap((g) => g.workers.map((w) => w.pid))) {
      if (pid > 1 && groupOf(pid) === pid) process.kill(-pid, 'SIGKILL');
    }
    const r = baton(['status', '-c', cfg]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/pid \d+ from .*baton\.pid is not running: a stale pidfile, left by a master that was killed/);
  });

  (IS_ROOT ? test : test.skip)(`root's master asked by another user: "try sudo"${IS_ROOT ? '' : ' [SKIPPED: needs root, to run a master as root and ask as nobody]'}`, async () => {
    const dir = tmpdir();
    fs.chmodSync(dir, 0o755);
    const name = `sudo-hint-${process.pid}`;
    const cfg = writeConfig(dir, { name, listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: nodeWorker(), count: 1 } });
    fs.chmodSync(cfg, 0o644);
    m = startMaster(cfg);
    await ready(m);
    const { node, baton: bin } = forAnyone();
    const r = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', node, bin, 'status', '-c', cfg], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, HOME: '/nonexistent' },
    });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain(`the runtime folder ${path.join(dir, 'run')} is uid 0's: its master runs as root, and only root may ask it; try sudo`);
  });
});

describe('the instance shorthand', () => {
  test('a bare name is /etc/baton/NAME.json; a path or a .json file is itself; anything else none', () => {
    expect(instanceFile('api')).toBe('/etc/baton/api.json');
    expect(instanceFile('my_app-2.blue')).toBe('/etc/baton/my_app-2.blue.json');
    expect(instanceFile('./x.json')).toBe('x.json');
    expect(instanceFile('/srv/app/baton.json')).toBe('/srv/app/baton.json');
    expect(instanceFile('a b')).toBeUndefined();
    expect(instanceFile('-c')).toBeUndefined();
  });

  test('`baton status FILE` reaches the master as `-c FILE` does; usage errors exit 2 naming the fault', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, { name: 'shorthand', listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: nodeWorker(), count: 1 } });
    const m = startMaster(cfg);
    try {
      await ready(m);
      const r = baton(['status', cfg, '--json']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).name).toBe('shorthand');
      expect(baton(['status', cfg]).stdout).toMatch(/master pid \d+/);
    } finally {
      await cleanup(m);
    }
    for (const [args, why] of [
      [['status', '-c'], "-c: give the config file's path"],
      [['stop', '-c'], "-c: give the config file's path"],
      [['check', '-c'], "-c: give the config file's path"],
      [['status'], 'give the config file (-c FILE) or the instance (baton status api)'],
      [['status', 'api', '-c', 'x.json'], 'give the instance or -c FILE, not both'],
      [['status', 'a b'], "'a b' is neither an instance name"],
    ] as const) {
      const r = baton([...args]);
      expect({ args, code: r.code, why: r.stderr.includes(`baton: ${why}`) }).toEqual({ args, code: 2, why: true });
    }
  });
});
