// `baton top` on a terminal (a pty): full screen redrawn in place, q or ^C quits with 0, and the
// terminal is as before (main screen, cursor, line wrap, cooked mode with echo); a worker's
// STATUS= full of escape sequences is shown escaped, every line within the terminal's width.
import { spawnSync } from 'node:child_process';
import { BATON, cleanupAll, ready, startMaster, STATUS_WORKER, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

const HOSTILE = '\u001b]0;owned\u0007\u001b[2Jhi\u009b31mred ' + 'x'.repeat(3000);

// runs `sh -c CMD` on a pty 140 x 30; sends KEY once two frames were drawn; prints all it read
const PTY = `
import os, pty, select, sys, time
cmd, key = sys.argv[1], sys.argv[2].encode('latin1')
pid, fd = pty.fork()
if pid == 0:
    os.execvp('sh', ['sh', '-c', 'stty cols 140 rows 30; ' + cmd + '; echo EXIT=$?; stty -a'])
out, sent, end = b'', False, time.time() + 30
while time.time() < end:
    if select.select([fd], [], [], 0.1)[0]:
        try:
            d = os.read(fd, 65536)
        except OSError:
            break
        if not d:
            break
        out += d
    if not sent and out.count(b'GEN SLOT') >= 2:
        os.write(fd, key)
        sent = True
os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
`;

describe('baton top on a terminal', () => {
  let m: Master | undefined;
  let dir: string | undefined;
  afterEach(() => cleanupAll(m, dir));

  test.each([['q', 'q'], ['^C', '\u0003']])('%s quits with 0 and puts the terminal back; STATUS= escaped, lines within the width', async (_name, key) => {
    dir = tmpdir();
    const cfg = writeConfig(dir, { name: 'tty', workers: { command: STATUS_WORKER, env: { S: HOSTILE }, count: 2, stopTimeoutMs: 2000 } });
    m = startMaster(cfg);
    await ready(m);
    await waitFor('the STATUS=', async () => (await m!.status()).generations[0].workers.every((w) => w.status));
    const r = spawnSync('python3', ['-c', PTY, `${JSON.stringify(process.execPath)} ${BATON} top -c ${cfg}`, key], { encoding: 'latin1', timeout: 60_000 });
    const out = r.stdout;
    expect(out).toContain('EXIT=0');
    const [screen, rest] = [out.slice(out.indexOf('\x1b[?1049h'), out.indexOf('\x1b[?1049l')), out.slice(out.indexOf('\x1b[?1049l'))];
    // taken: alternate screen, cursor hidden, no wrap; given back in the reverse order
    expect(screen.startsWith('\x1b[?1049h\x1b[?25l\x1b[?7l')).toBe(true);
    expect(out).toContain('\x1b[?7h\x1b[?25h\x1b[?1049l');
    // cooked mode and echo again
    expect(rest).toMatch(/(^|\s)icanon(\s|$)/m);
    expect(rest).toMatch(/(^|\s)echo(\s|$)/m);
    // the worker's text escaped: no OSC, no CSI of its own, no C1
    expect(screen).not.toContain('\x1b]0;owned');
    expect(screen).not.toContain('\x1b[2J');
    expect(screen).not.toContain('\x9b');
    expect(screen).toContain('\\x1b]0;owned\\x07');
    // each drawn line fits the 140 columns (our own sequences, home and erase, end a line here)
    const lines = screen.split(/\r?\n|\x1b\[[0-9;?]*[a-zA-Z]/);
    expect(lines.some((l) => l.startsWith('GEN SLOT'))).toBe(true);
    expect(lines.filter((l) => l.length > 140)).toEqual([]);
  });
});
