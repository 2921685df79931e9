import fs from 'node:fs';
import path from 'node:path';
import { argMax } from '../../src/config/exec-limits';
import { baton, cleanup, get, portOf, ready, startMaster, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

/** execve()'s limit for the workers, as baton computes it: sysconf(_SC_ARG_MAX) within the kernel's cap (6 MiB whatever `ulimit -s`). */
const ARG_MAX = argMax();

/** `count` variables of 100 KB each (each under MAX_ARG_STRLEN, together over ARG_MAX when count is big). */
function bigEnv(count: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`BIG${i}`, 'x'.repeat(100_000)]));
}

const sleepy = ['sleep', '600'];
const longPath = 'x'.repeat(120);

// What `check` passed on main while `run` could not start it (or every stop ended in SIGKILL).
const HOSTILE: Array<[string, Record<string, unknown>, RegExp]> = [
  ['a NUL byte in workers.command', { workers: { command: ['sleep', '600\u0000'] } }, /\/workers\/command\/1: must not contain a NUL byte/],
  ['a NUL byte in a workers.env value', { workers: { command: sleepy, env: { A: 'x\u0000y' } } }, /\/workers\/env\/A: must not contain a NUL byte/],
  ['a NUL byte in a workers.env name', { workers: { command: sleepy, env: { 'A\u0000B': 'x' } } }, /\/workers\/env: 'A\u0000B' is not a variable name/],
  ['an = in a workers.env name', { workers: { command: sleepy, env: { 'A=B': 'x' } } }, /\/workers\/env: 'A=B' is not a variable name/],
  ['one variable over MAX_ARG_STRLEN', { workers: { command: sleepy, env: { BIG: 'x'.repeat(140_000) } } }, /\/workers\/env\/BIG: 140004 bytes as NAME=value; one variable may be at most 131071 \(MAX_ARG_STRLEN/],
  ['one argument over MAX_ARG_STRLEN', { workers: { command: ['sleep', 'x'.repeat(140_000)] } }, /\/workers\/command\/1: 140000 bytes; one argument may be at most 131071/],
  ['an environment over ARG_MAX', { workers: { command: sleepy, env: bigEnv(Math.ceil(ARG_MAX / 100_000) + 1) } }, /\/workers\/env: a worker's command line and environment come to about \d+ bytes .* more than execve\(\) takes \(ARG_MAX \d+/],
  ['a unix listener path over 107 bytes', { listeners: [{ name: 'u', unix: longPath }], workers: { command: sleepy } }, /\/listeners\/0\/unix: '.*' is \d+ bytes; a unix socket path may be at most 107 \(sun_path\)/],
  ...(['SIGHUP', 'SIGUSR2', 'SIGWINCH'] as const).map((sig): [string, Record<string, unknown>, RegExp] => [
    `stopSignal ${sig}, which workers ignore`,
    { workers: { command: sleepy, stopSignal: sig } },
    /\/workers\/stopSignal: must be one of SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGKILL \(workers ignore SIGHUP, SIGUSR2 and SIGWINCH/,
  ]),
];

describe('check refuses what run cannot start', () => {
  const dirs: string[] = [];
  let m: Master | undefined;
  afterEach(async () => {
    await cleanup(m);
    m = undefined;
  });
  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const dir = () => {
    const d = tmpdir();
    dirs.push(d);
    return d;
  };

  test.each(HOSTILE)('check: %s → exit 78 with the key path', (_what, cfg, message) => {
    const f = writeConfig(dir(), cfg);
    const r = baton(['check', '-c', f]);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(78);
  });

  test('an environment just under ARG_MAX passes check, and run starts such a worker', async () => {
    const d = dir();
    // what baton counts beyond workers.env: its own environment and what it adds, within 64 KiB
    const own = Object.entries(process.env).reduce((n, [k, v]) => n + k.length + String(v).length + 2 + 8, 0);
    const env = bigEnv(Math.floor((ARG_MAX - own - 64 * 1024) / 100_010));
    const f = writeConfig(d, { name: 'roomy', workers: { command: ['sh', '-c', 'echo ok > started; exec sleep 600'], env, ready: 'spawn' } });
    expect(baton(['check', '-c', f]).code).toBe(0);
    m = startMaster(f);
    await ready(m);
    await waitFor('the worker to run', () => fs.existsSync(path.join(d, 'started')));
  });

  test.each([
    ['a NUL byte in workers.command', { command: ['sleep', '600\u0000'] }, /\/workers\/command\/1: must not contain a NUL byte/],
    ['an environment over ARG_MAX', { env: bigEnv(Math.ceil(ARG_MAX / 100_000) + 1) }, /\/workers\/env: a worker's command line and environment/],
  ] as Array<[string, Record<string, unknown>, RegExp]>)('a reload with %s is refused and leaves no trace in status but lastReload', async (_what, workers, message) => {
    const d = dir();
    const py = path.join(__dirname, '..', 'fixtures', 'py-worker.py');
    const f = writeConfig(d, { name: 'hostile', listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: ['python3', py] } });
    m = startMaster(f);
    const s0 = await ready(m);
    const cfg = JSON.parse(fs.readFileSync(f, 'utf8'));
    cfg.workers = { ...cfg.workers, ...workers };
    fs.writeFileSync(f, JSON.stringify(cfg));
    const r = baton(['reload', '-c', f]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(message);
    const s = await m.status();
    expect(s.generations.map((g) => [g.id, g.state])).toEqual([[1, 'serving']]);
    expect(s.lastReload?.ok).toBe(false);
    expect(s.lastReload?.error).toMatch(message);
    expect(s.phase).toBe('running');
    expect((await get(portOf(s0))).status).toBe(200);
  });
});
