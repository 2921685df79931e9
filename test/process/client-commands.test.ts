// Issue 22, item 6: the client commands print everything they have before they exit, and
// none waits forever for a master that does not answer; a request whose client gave up is
// not acted on when the master resumes; the package's upgrade script cannot hang apt.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { controlSocketPath } from '../../src/contract/control';
import {
  BATON,
  baton,
  batonAsync,
  cleanupAll,
  ready,
  ROOT,
  rootOnly,
  sleep,
  STATUS_WORKER,
  startMaster,
  tmpdir,
  waitFor,
  writeConfig,
  type Master,
} from '../helpers/proc';

/** A STATUS= of 4000 control characters: 24,000 bytes of JSON (\u0001) per worker. */
const LONG_STATUS = '\u0001'.repeat(4000);
const EX_TEMPFAIL = 75;

let m: Master | undefined;
let dir: string | undefined;
afterEach(async () => {
  // a test that failed half-way may leave the master stopped
  if (m?.proc.exitCode === null) process.kill(m.pid, 'SIGCONT');
  await cleanupAll(m, dir);
});

describe('the client commands', () => {
  async function master(workers: number, extra: Record<string, unknown> = {}): Promise<{ cfg: string; m: Master }> {
    dir = tmpdir();
    const cfg = writeConfig(dir, { name: 'client', workers: { command: STATUS_WORKER, count: workers, env: { S: LONG_STATUS }, stopTimeoutMs: 3000 }, ...extra });
    m = startMaster(cfg);
    await ready(m);
    await waitFor('every STATUS=', async () => (await m!.status()).generations[0].workers.every((w) => w.status === LONG_STATUS));
    return { cfg, m };
  }

  test('status --json through a pipe whose reader starts late: all of it (not the 64 KiB the pipe takes), valid JSON, exit 0', async () => {
    const { cfg } = await master(6);
    const whole = baton(['status', '-c', cfg, '--json']);
    expect(whole.code).toBe(0);
    expect(whole.stdout.length).toBeGreaterThan(2 * 65536);

    const out = path.join(dir!, 'status.json');
    // the reader takes nothing for a second: the pipe fills at 64 KiB and the client must wait
    const r = spawnSync('bash', ['-c', '{ "$0" "$1" status -c "$2" --json; echo $? >"$3.rc"; } | { sleep 1; cat >"$3"; }', process.execPath, BATON, cfg, out], {
      encoding: 'utf8',
      timeout: 60000,
    });
    expect(r.status).toBe(0);
    expect(fs.readFileSync(`${out}.rc`, 'utf8').trim()).toBe('0');
    const text = fs.readFileSync(out, 'utf8');
    expect(text.length).toBeGreaterThan(2 * 65536);
    const s = JSON.parse(text);
    expect(s.generations[0].workers).toHaveLength(6);
    expect(s.generations[0].workers[5].status).toBe(LONG_STATUS);
  });

  test('a stopped master: status --timeout 1 returns, exit 75, saying what it waited for and what to do (both command-line paths)', async () => {
    const { cfg, m } = await master(1);
    process.kill(m.pid, 'SIGSTOP');
    try {
      // `status -c FILE --timeout 1` takes the path without yargs, `--json` the one with it
      for (const args of [['status', '-c', cfg, '--timeout', '1'], ['status', '-c', cfg, '--json', '--timeout=1']]) {
        const r = await batonAsync(args, 30000);
        expect(r.ms).toBeLessThan(15000);
        expect({ code: r.code, stdout: r.stdout }).toEqual({ code: EX_TEMPFAIL, stdout: '' });
        expect(r.stderr).toMatch(/^baton: timed out after 1 s waiting for the master to answer `status`; it may be stopped \(SIGSTOP\) or stuck \(no answer from the master on .*control\.sock\)\. See `baton status -c .*`, `systemctl status` and the master's log; --timeout SECONDS waits longer\n$/);
      }
    } finally {
      process.kill(m.pid, 'SIGCONT');
    }
    expect((await batonAsync(['status', '-c', cfg, '--timeout', '5'], 30000)).code).toBe(0);
  });

  test('an upgrade and a reload that timed out while the master was stopped are dropped when it resumes: nothing happens', async () => {
    const { cfg, m } = await master(1);
    const before = await m.status();
    process.kill(m.pid, 'SIGSTOP');
    try {
      const up = await batonAsync(['upgrade', '-c', cfg, '--timeout', '1'], 30000);
      expect(up.ms).toBeLessThan(15000);
      expect(up.code).toBe(EX_TEMPFAIL);
      expect(up.stderr).toMatch(/timed out after 1 s waiting for the upgrade's outcome; the master may still complete it or roll it back/);
      const rl = await batonAsync(['reload', '-c', cfg, '--timeout', '1'], 30000);
      expect(rl.code).toBe(EX_TEMPFAIL);
      expect(rl.stderr).toMatch(/timed out after 1 s waiting for the reload's outcome; the master may still complete it/);
    } finally {
      process.kill(m.pid, 'SIGCONT');
    }
    // the first drop is logged at once, the second counted for the next report
    await m.waitForOutput(/control socket: 1 (upgrade|reload) request\(s\) dropped, not acted on: the client had gone before the master read it/);
    const after = await m.status();
    expect(after.pid).toBe(before.pid);
    expect(after.phase).toBe('running');
    expect(after.upgrade).toEqual({ state: 'none', last: null });
    expect(after.lastReload).toBeNull();
    expect(after.generations.map((g) => g.id)).toEqual([before.generation]);
    expect(m.output()).not.toMatch(/binary upgrade|reloading/);
  });

  test('a reload request whose connection closed before the master read it is not acted on (any client, not only baton\'s)', async () => {
    const { m } = await master(1);
    process.kill(m.pid, 'SIGSTOP');
    try {
      await new Promise<void>((resolve, reject) => {
        const c = net.connect(controlSocketPath(m.runtimeDir));
        c.once('error', reject);
        c.once('connect', () => c.end('{"cmd":"reload"}\n', () => (c.destroy(), resolve())));
      });
    } finally {
      process.kill(m.pid, 'SIGCONT');
    }
    // dropped, or (as before) acted on
    await m.waitForOutput(/control socket: 1 reload request\(s\) dropped, not acted on|reloading/);
    await sleep(500);
    expect(m.output()).not.toMatch(/reloading/);
    const s = await m.status();
    expect(s.lastReload).toBeNull();
    expect(s.phase).toBe('running');
  });

  test("stop's default wait is the config's stopTimeoutMs + 30 s: against a stopped master it ends, exit 75", async () => {
    // stop waits the config's stopTimeoutMs (0 here) + 30 s for the master to exit
    const { cfg, m } = await master(1);
    const raw = JSON.parse(fs.readFileSync(cfg, 'utf8'));
    raw.workers.stopTimeoutMs = 0;
    fs.writeFileSync(cfg, JSON.stringify(raw));
    process.kill(m.pid, 'SIGSTOP');
    try {
      const r = await batonAsync(['stop', '-c', cfg], 60000);
      expect(r.code).toBe(EX_TEMPFAIL);
      expect(r.stderr).toMatch(/timed out after 30 s waiting for the master to exit; it may still be stopping/);
    } finally {
      process.kill(m.pid, 'SIGCONT');
    }
  }, 90000);
});

rootOnly('packaging/instances upgrade (the package postinst) and a master that does not answer', () => {
  test('returns, exits 0 and says the upgrade timed out; the master, resumed, does not upgrade', async () => {
    dir = tmpdir();
    const cfg = writeConfig(dir, { name: 'pkg', runtimeDir: path.join(dir, 'run'), workers: { command: STATUS_WORKER, env: { S: 'serving' }, stopTimeoutMs: 3000 } });
    m = startMaster(cfg);
    await ready(m);
    // what the script sees in a private mount namespace: systemd's folder, a unit list with
    // baton@pkg.service active, /etc/baton/pkg.json, /usr/bin/baton running this checkout
    const fake = path.join(dir, 'fake');
    for (const d of ['run/systemd/system', 'etc/baton', 'usr/bin', 'path']) fs.mkdirSync(path.join(fake, d), { recursive: true });
    fs.copyFileSync(cfg, path.join(fake, 'etc/baton/pkg.json'));
    fs.writeFileSync(path.join(fake, 'usr/bin/baton'), `#!/bin/sh\nexec ${process.execPath} ${BATON} "$@"\n`, { mode: 0o755 });
    const calls = path.join(dir, 'systemctl.calls');
    fs.writeFileSync(
      path.join(fake, 'path/systemctl'),
      `#!/bin/sh\necho "$*" >>${calls}\ncase "$1" in list-units) echo 'baton@pkg.service loaded active running baton pkg' ;; esac\nexit 0\n`,
      { mode: 0o755 },
    );
    process.kill(m.pid, 'SIGSTOP');
    let r: ReturnType<typeof spawnSync>;
    const t0 = Date.now();
    try {
      r = spawnSync(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-ec',
          'f=$1; shift; for p in run etc usr/bin; do mount -t overlay overlay -o "lowerdir=$f/$p:/$p" "/$p"; done; PATH=$f/path:$PATH exec "$@"',
          'sh',
          fake,
          'sh',
          path.join(ROOT, 'packaging', 'instances'),
          'upgrade',
        ],
        { encoding: 'utf8', env: { ...process.env, BATON_UPGRADE_TIMEOUT: '2' }, timeout: 120000 },
      );
    } finally {
      process.kill(m.pid, 'SIGCONT');
    }
    expect(Date.now() - t0).toBeLessThan(90000);
    expect(r.status).toBe(0);
    // not answering status either: the script's policy for a master that does not answer (a restart, here the fake's)
    expect(r.stderr).toMatch(/baton: ERROR: hot upgrade of baton@pkg\.service failed and its master does not answer: restarting it \(timed out after 2 s waiting for the upgrade's outcome/);
    expect(fs.readFileSync(calls, 'utf8')).toMatch(/^restart baton@pkg\.service$/m);
    await m.waitForOutput(/control socket: 1 upgrade request\(s\) dropped, not acted on/);
    const s = await m.status();
    expect(s.pid).toBe(m.pid);
    expect(s.upgrade).toEqual({ state: 'none', last: null });
  }, 150000);
});
