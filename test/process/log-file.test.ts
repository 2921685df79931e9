// Issue 22 item 3: log.file is opened as root, at start, on SIGUSR1 and on reload. Nothing
// another user could put there is written through (a symlink, a hard link, a FIFO, a folder
// they own), and a worker's text reaches it escaped, cut and rate-limited.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { baton, cleanupAll, get, IS_ROOT, NOBODY, nodeWorker, portOf, rootOnly, startMaster, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

if (!IS_ROOT) console.warn('log-file.test.ts: the log folder of another user is SKIPPED: acting as a second user (nobody) needs root');

let m: Master | undefined;
let dir: string | undefined;
afterEach(async () => {
  await cleanupAll(m, dir);
  m = undefined;
  dir = undefined;
});

const config = (d: string, file: string, workers: Record<string, unknown> = { command: nodeWorker(), count: 1 }, listeners: unknown[] = [{ name: 'http', tcp: '127.0.0.1:0' }]) =>
  writeConfig(d, { name: 'log-file', listeners, workers: { stopTimeoutMs: 10000, ...workers }, log: { file } });

const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');

/** A root-only file (what /etc/shadow is): its content and mode, to show it was not written. */
function victim(d: string): { file: string; state(): string } {
  const file = path.join(d, 'victim');
  fs.writeFileSync(file, 'root only\n', { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return { file, state: () => `${(fs.statSync(file).mode & 0o7777).toString(8)} ${JSON.stringify(fs.readFileSync(file, 'utf8'))}` };
}

/** The master's exit code, or 'started' if it was still running after it should have refused. */
async function refusal(master: Master): Promise<{ code: number | 'started' | null; output: string }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<{ code: 'started' }>((resolve) => (timer = setTimeout(() => resolve({ code: 'started' }), 15000)));
  const exit = await Promise.race([master.exited, late]);
  clearTimeout(timer);
  return { code: exit.code, output: master.output() };
}

rootOnly("log.file in a folder the workers' user owns (baton as root)", () => {
  test('nobody owns the log folder and put a symlink to a root 0600 file there: check and run exit 78 naming /log/file, the folder and its owner; the file is untouched', async () => {
    dir = tmpdir();
    fs.chmodSync(dir, 0o755); // nobody must reach its folder below
    const logs = path.join(dir, 'logs');
    fs.mkdirSync(logs);
    fs.chownSync(logs, NOBODY, NOBODY);
    const target = victim(dir);
    const before = target.state();
    const file = path.join(logs, 'baton.log');
    // what the worker did in the issue, as the workers' user
    const r = spawnSync('ln', ['-s', target.file, file], { uid: NOBODY, gid: NOBODY, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const cfg = config(dir, file);
    const why = `/log/file: '${file}': ${logs} is owned by uid ${NOBODY}, not by uid 0 or root`;

    const c = baton(['check', '-c', cfg]);
    expect({ code: c.code, stderr: c.stderr }).toEqual({ code: 78, stderr: `baton: config error in ${cfg}: ${why}\n` });

    m = startMaster(cfg);
    const run = await refusal(m);
    expect(run).toEqual({ code: 78, output: `baton: config error in ${cfg}: ${why}\n` });
    expect(target.state()).toBe(before);
  });
});

describe('log.file that is not a regular file of its own', () => {
  test.each([
    ['a hard link to a 0600 file', 'it has 2 hard links'],
    ['a FIFO', 'it is a FIFO, not a regular file'],
    ['a symlink to a 0600 file', 'it is a symlink, not a regular file'],
  ])('%s: check and run exit 78 naming /log/file and why; nothing written to it', async (kind, why) => {
    dir = tmpdir();
    const target = victim(dir);
    const before = target.state();
    const file = path.join(dir, 'baton.log');
    if (kind.startsWith('a hard link')) fs.linkSync(target.file, file);
    else if (kind.startsWith('a symlink')) fs.symlinkSync(target.file, file);
    else expect(spawnSync('mkfifo', ['-m', '0600', file]).status).toBe(0);
    const cfg = config(dir, file);

    const c = baton(['check', '-c', cfg]);
    expect(c.code).toBe(78);
    expect(c.stderr).toBe(`baton: config error in ${cfg}: /log/file: '${file}': ${why}${kind.startsWith('a hard link') ? ' (another name of the same file could be any file on this file system)' : ''}\n`);

    m = startMaster(cfg);
    const run = await refusal(m);
    expect(run.code).toBe(78);
    expect(run.output).toContain(`/log/file: '${file}': ${why}`);
    expect(target.state()).toBe(before);
  });
});

describe('SIGUSR1 reopens log.file only as it would open it at start', () => {
  test('baton.log renamed (as logrotate does) and a symlink to a 0600 file put in its place: the file behind it is untouched; the master logs on where it was and says why; a reload is refused', async () => {
    dir = tmpdir();
    const target = victim(dir);
    const before = target.state();
    const file = path.join(dir, 'baton.log');
    const cfg = config(dir, file);
    m = startMaster(cfg);
    await waitFor('generation 1 ready in log.file', () => /generation 1 ready/.test(read(file)));
    const port = portOf(await m.status());

    fs.renameSync(file, `${file}.1`);
    fs.symlinkSync(target.file, file);
    process.kill(m.pid, 'SIGUSR1');
    const why = `/log/file: '${file}': it is a symlink, not a regular file`;
    await waitFor('the SIGUSR1 line', () => /SIGUSR1: /.test(read(`${file}.1`) + read(target.file)));
    expect(target.state()).toBe(before);
    expect(read(`${file}.1`)).toContain(`SIGUSR1: log file not reopened, the log goes on where it was: ${why}`);
    expect((await get(port)).status).toBe(200);

    const r = baton(['reload', '-c', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(why);
    await waitFor('the refused reload in the renamed file', () => read(`${file}.1`).includes(`reload failed, generation 1 keeps serving: ${cfg}: ${why}`));
    expect(target.state()).toBe(before);
    expect(m.output()).toBe('');
  });
});

describe("a worker's notifications in the log: escaped, cut, rate-limited", () => {
  test('10,000 WATCHDOG_USEC= values of ESC[2J and 3,000 characters: fewer than 100 lines, each escaped and cut; the rest counted in a line of its own', async () => {
    dir = tmpdir();
    const file = path.join(dir, 'baton.log');
    const done = path.join(dir, 'done');
    const n = 10000;
    const worker = [
      'import os, signal, socket, sys',
      "a = os.environ['NOTIFY_SOCKET']",
      "a = '\\0' + a[1:] if a.startswith('@') else a",
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      "s.sendto(b'READY=1', a)",
      "v = b'WATCHDOG_USEC=\\x1b[2J' + b'A' * 3000",
      `for i in range(${n}): s.sendto(v, a)`,
      'open(sys.argv[1], "w").close()',
      'signal.pause()',
    ].join('\n');
    const cfg = config(dir, file, { command: ['python3', '-c', worker, done], count: 1 }, []);
    m = startMaster(cfg);
    await waitFor('the worker to have sent them all', () => fs.existsSync(done), 60000);
    const counted = () => {
      const log = read(file);
      const written = (log.match(/ sent WATCHDOG_USEC=/g) ?? []).length;
      const suppressed = [...log.matchAll(/: (\d+) more log line\(s\) its notifications caused were not written \(more than 20 at once or 5 a second\)$/gm)];
      return { log, written, suppressed: suppressed.reduce((sum, x) => sum + Number(x[1]), 0), summaries: suppressed.length };
    };
    // every message is either a line or counted (the count said at most a second after the first one left out)
    const c = await waitFor('every message written or counted', () => {
      const x = counted();
      return x.written + x.suppressed >= n && x;
    });
    expect(c.written + c.suppressed).toBe(n);
    const lines = c.log.trimEnd().split('\n');
    expect(lines.length).toBeLessThan(100);
    expect(c.summaries).toBeGreaterThanOrEqual(1);
    expect(c.log).not.toContain('\x1b');
    const shown = `WATCHDOG_USEC=\\x1b[2J${'A'.repeat(200 - '\\x1b[2J'.length)}… (3004 characters): not a number of microseconds, ignored`;
    for (const l of lines.filter((x) => x.includes(' sent WATCHDOG_USEC='))) expect(l.slice(l.indexOf(' sent ') + 6)).toBe(shown);
    expect(m.output()).toBe('');
  });
});
