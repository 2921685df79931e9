// `baton top` on a terminal (a pty): full screen redrawn in place, q or ^C quits with 0, and the
// terminal is as before (main screen, cursor, line wrap, cooked mode with echo); a worker's
// STATUS= full of escape sequences is shown escaped, every line within the terminal's width.
import { onPty } from '../helpers/pty';
import { BATON, cleanupAll, ready, startMaster, STATUS_WORKER, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

const HOSTILE = '\u001b]0;owned\u0007\u001b[2Jhi\u009b31mred ' + 'x'.repeat(3000);

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
    // q or ^C once two frames were drawn; the terminal's settings after it
    const out = onPty(`${JSON.stringify(process.execPath)} ${BATON} top -c ${cfg}`, { size: '140x30', after: 'stty -a', key, when: { text: 'GEN SLOT', count: 2 } });
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
