import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { native } from '../../src/native';
import { FakeSystemd } from '../helpers/fake-systemd';
import { notifySocketOf } from '../helpers/notify-socket';
import { BATON, batonAsync, cleanup, get, nodeWorker, portOf, ready, sleep, startMaster, tmpdir, waitFor, workerPids, writeConfig, type Master } from '../helpers/proc';

describe('sd_notify, both ways', () => {
  let m: Master | undefined;
  let sd: FakeSystemd | undefined;
  afterEach(async () => {
    await cleanup(m);
    sd?.close();
    sd = undefined;
  });

  const setup = (workers: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) => {
    const dir = tmpdir();
    sd = new FakeSystemd(dir);
    const cfg = writeConfig(dir, {
      name: 'notify',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: nodeWorker(), count: 2, ...workers },
    });
    m = startMaster(cfg, { env: { NOTIFY_SOCKET: sd.socket, ...env } });
    return { dir, cfg };
  };

  test('READY=1 only after every worker of the first generation sent READY=1', async () => {
    const dir = tmpdir();
    setup({ env: { WORKER_READY_DELAY_MS: '400', WORKER_READY_MARK: dir } });
    const [r] = await sd!.waitFor('READY', '1');
    const marks = fs.readdirSync(dir).filter((f) => f.startsWith('ready-'));
    expect(marks).toHaveLength(2);
    const lastWorkerReady = Math.max(...marks.map((f) => Number(fs.readFileSync(path.join(dir, f), 'utf8'))));
    expect(r.at).toBeGreaterThanOrEqual(lastWorkerReady);
    expect(r.pid).toBe(m!.pid);
    expect(r.fields.get('STATUS')).toBe('generation 1: 2/2 workers ready');
    // nothing claimed readiness earlier
    expect(sd!.messages.indexOf(r)).toBe(sd!.messages.findIndex((x) => x.fields.has('READY')));
  });

  test('reload: RELOADING=1 with MONOTONIC_USEC, then READY=1 once the new generation is ready; also when it fails', async () => {
    const { cfg } = setup({});
    await ready(m!);
    await sd!.waitFor('READY', '1');
    const before = process.hrtime.bigint() / 1000n;
    const r = await batonAsync(['reload', '-c', cfg]);
    const after = process.hrtime.bigint() / 1000n;
    expect(r.code).toBe(0);
    const [reloading] = await sd!.waitFor('RELOADING', '1');
    const usec = BigInt(reloading.fields.get('MONOTONIC_USEC')!);
    expect(usec).toBeGreaterThanOrEqual(before);
    expect(usec).toBeLessThanOrEqual(after);
    const readies = await sd!.waitFor('READY', '1', 2);
    expect(readies[1].at).toBeGreaterThanOrEqual(reloading.at);
    expect(readies[1].fields.get('STATUS')).toBe('generation 2: 2/2 workers ready');

    // a typo: the file is no longer JSON, but its runtimeDir can still be read by the client
    fs.writeFileSync(cfg, fs.readFileSync(cfg, 'utf8').replace(/}\s*$/, ''));
    const bad = await batonAsync(['reload', '-c', cfg]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/invalid JSON/);
    await sd!.waitFor('RELOADING', '1', 2);
    const third = (await sd!.waitFor('READY', '1', 3))[2];
    expect(third.fields.get('STATUS')).toMatch(/^reload failed: .*invalid JSON.*; generation 2: 2\/2 workers ready$/);
  });

  test("reload: EXTEND_TIMEOUT_USEC after RELOADING=1, covering the new config's readyTimeoutMs, before the READY=1 that ends it", async () => {
    const { cfg } = setup({ readyTimeoutMs: 10000 });
    await ready(m!);
    await sd!.waitFor('READY', '1');
    const c = JSON.parse(fs.readFileSync(cfg, 'utf8'));
    c.workers = { ...c.workers, readyTimeoutMs: 25000, env: { WORKER_READY_DELAY_MS: '500' } };
    fs.writeFileSync(cfg, JSON.stringify(c));
    expect((await batonAsync(['reload', '-c', cfg])).code).toBe(0);
    const done = (await sd!.waitFor('READY', '1', 2))[1];
    // one socket's datagrams arrive in order: what was sent before READY=1 is here
    const [reloading] = sd!.with('RELOADING', '1');
    const [extend] = sd!.with('EXTEND_TIMEOUT_USEC');
    expect(extend).toBeDefined();
    const order = [reloading, extend, done].map((x) => sd!.messages.indexOf(x));
    expect(order).toEqual([...order].sort((a, b) => a - b));
    // the time left to the new generation's deadline + 10 s (two renewal periods)
    const usec = Number(extend.fields.get('EXTEND_TIMEOUT_USEC'));
    expect(usec).toBeGreaterThan(25_000_000);
    expect(usec).toBeLessThanOrEqual(35_000_000);
    expect(extend.pid).toBe(m!.pid);
  });

  test('STOPPING=1 when the stop begins, EXTEND_TIMEOUT_USEC while the drain goes on', async () => {
    setup({ stopTimeoutMs: 20000 });
    const port = portOf(await ready(m!));
    const slow = get(port, '/?delay=6000');
    await m!.waitForOutput(/request in flight, answered in 6000 ms/);
    m!.proc.kill('SIGTERM');
    const [s] = await sd!.waitFor('STOPPING', '1');
    expect(s.pid).toBe(m!.pid);
    // renewed every 5 s, each covering what is left of the drain deadline plus a margin
    const ext = await sd!.waitFor('EXTEND_TIMEOUT_USEC', undefined, 2, 15000);
    expect(Number(ext[0].fields.get('EXTEND_TIMEOUT_USEC'))).toBeGreaterThan(20_000_000);
    expect(Number(ext[1].fields.get('EXTEND_TIMEOUT_USEC'))).toBeLessThan(Number(ext[0].fields.get('EXTEND_TIMEOUT_USEC')));
    expect((await slow).status).toBe(200);
    expect((await m!.exited).code).toBe(0);
  });

  test('WATCHDOG=1 at half of WATCHDOG_USEC; none when WATCHDOG_PID names another process', async () => {
    const periodMs = 200;
    setup({}, { WATCHDOG_USEC: String(periodMs * 1000) });
    await ready(m!);
    const pings = await sd!.waitFor('WATCHDOG', '1', 11, 10000);
    const gaps = pings.slice(1).map((p, i) => p.at - pings[i].at).sort((a, b) => a - b);
    const median = gaps[gaps.length >> 1];
    // sd_watchdog_enabled(3): half the period. A loaded machine delays some pings (and delivers
    // some together), which the median rides out; a ping at the whole period would not pass
    expect(median).toBeGreaterThanOrEqual(0.45 * periodMs);
    expect(median).toBeLessThanOrEqual(0.75 * periodMs);
    expect(pings.every((p) => p.pid === m!.pid)).toBe(true);
    await cleanup(m);
    sd!.close();
    sd = undefined;

    setup({}, { WATCHDOG_USEC: String(periodMs * 1000), WATCHDOG_PID: '1' });
    await ready(m!);
    await sd!.waitFor('READY', '1');
    // the first ping would follow READY=1 at once: three periods with none
    await sleep(3 * periodMs);
    expect(sd!.with('WATCHDOG')).toHaveLength(0);
  });

  test('a process that is not the worker cannot make it ready; a worker\'s MAINPID= never reaches systemd', async () => {
    // worker 0 speaks through a child (systemd-notify), which counts for it;
    // the test process sends READY=1 for the silent worker 1, which must not count.
    const script =
      'if [ "$BATON_WORKER_ID" = 0 ]; then systemd-notify MAINPID=4242 STATUS=shell READY=1; fi; exec sleep 600';
    setup({ command: ['sh', '-c', script], readyTimeoutMs: 1500, stopTimeoutMs: 1000 });
    await m!.waitForOutput(/worker 0 \(pid \d+\) of generation 1 ready/);
    const addr = notifySocketOf(workerPids(await m!.status())[1]);
    for (let i = 0; i < 5; i++) native.notifySend(addr, Buffer.from('READY=1'));
    const e = await m!.exited;
    expect(e.code).toBe(1);
    expect(m!.output()).toMatch(/worker 1 \(pid \d+\) of generation 1 did not send READY=1/);
    expect(m!.output()).not.toMatch(/worker 1 \(pid \d+\) of generation 1 ready/);
    expect(sd!.with('MAINPID')).toHaveLength(0);
    expect(sd!.with('READY')).toHaveLength(0);
  });

  test('under journald (JOURNAL_STREAM matches stderr) log lines carry <N> priority prefixes', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'journal',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: ['sh', '-c', 'exit 9'] },
    });
    const logFile = path.join(dir, 'stderr.log');
    const fd = fs.openSync(logFile, 'w');
    const st = fs.fstatSync(fd);
    const p = spawn(process.execPath, [BATON, 'run', '-c', cfg], {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` },
    });
    const code = await new Promise((r) => p.once('exit', r));
    fs.closeSync(fd);
    expect(code).toBe(1);
    const lines = fs.readFileSync(logFile, 'utf8').trim().split('\n');
    expect(lines[0]).toMatch(/^<6>baton \S+ master starting/);
    expect(lines).toContainEqual(expect.stringMatching(/^<3>cannot start: worker 0 .* exited with status 9 before it was ready$/));
  });

  test('log file: USR1 reopens it (logrotate\'s move-then-signal)', async () => {
    const dir = tmpdir();
    const logFile = path.join(dir, 'baton.log');
    const cfg = writeConfig(dir, {
      name: 'logfile',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: nodeWorker() },
      log: { file: 'baton.log', format: 'json' },
    });
    m = startMaster(cfg);
    // its log goes to the file: ready when the file says so
    const logged = (file: string, re: RegExp) => waitFor(`${re} in ${path.basename(file)}`, () => fs.existsSync(file) && re.test(fs.readFileSync(file, 'utf8')), 10000);
    await logged(logFile, /generation 1 ready/);
    expect(workerPids(await m.status())).toHaveLength(1);
    fs.renameSync(logFile, `${logFile}.1`);
    m.proc.kill('SIGUSR1');
    await logged(logFile, /SIGUSR1: log file reopened/);
    m.proc.kill('SIGHUP');
    await logged(logFile, /SIGHUP: reloading/);
    const fresh = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(fresh[0].message).toBe('SIGUSR1: log file reopened');
    expect(fresh.map((x) => x.message)).toContainEqual(expect.stringMatching(/^SIGHUP: reloading/));
    const old = fs.readFileSync(`${logFile}.1`, 'utf8');
    expect(old).toMatch(/master starting/);
    expect(old).not.toMatch(/reloading/);
  });
});
