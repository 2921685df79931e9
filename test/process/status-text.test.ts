// Issue 9 item 10 (second half): a worker's STATUS= is not printed raw on a terminal.
import fs from 'node:fs';
import path from 'node:path';
import { baton, cleanupAll, ready, ROOT, startMaster, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

// retitles the window, clears the screen, C1 CSI (U+009B), DEL, a tab
const HOSTILE = '\u001b]0;owned\u0007\u001b[2Jhi\u009b31mred\u007f\tend';
/** Any control character but the newline that ends a line. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

describe('baton status and a worker STATUS= full of escape sequences', () => {
  let m: Master | undefined;
  let dir: string | undefined;
  afterEach(() => cleanupAll(m, dir));

  test('the table shows them escaped; --json keeps the text exactly, with no raw control character', async () => {
    dir = tmpdir();
    const worker =
      `const { notify } = require(${JSON.stringify(path.join(ROOT, 'dist', 'serve', 'index.js'))});` +
      `notify({ READY: 1, STATUS: ${JSON.stringify(HOSTILE)} }); setInterval(() => {}, 1e6);`;
    const cfg = writeConfig(dir, { name: 'esc', workers: { command: [process.execPath, '-e', worker], stopTimeoutMs: 5000 } });
    m = startMaster(cfg);
    await ready(m);
    await waitFor('the STATUS=', async () => (await m!.status()).generations[0]?.workers[0] && true);

    const table = baton(['status', '-c', cfg]);
    expect(table.code).toBe(0);
    expect(table.stdout).not.toMatch(RAW_CONTROL);
    expect(table.stdout).toContain('\\x1b]0;owned\\x07\\x1b[2Jhi\\x9b31mred\\x7f\\x09end');

    const json = baton(['status', '-c', cfg, '--json']);
    expect(json.code).toBe(0);
    expect(json.stdout).not.toMatch(RAW_CONTROL);
    expect(JSON.parse(json.stdout).generations[0].workers[0].status).toBe(HOSTILE);
  });
});
