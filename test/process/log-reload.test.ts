// A reload to a log.file that cannot be opened is refused before anything changes: the old
// generation keeps serving and the log stays where it was.
import fs from 'node:fs';
import path from 'node:path';
import { baton, cleanupAll, get, nodeWorker, portOf, ready, startMaster, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

describe('reload to a log.file that cannot be opened', () => {
  let m: Master | undefined;
  let dir: string | undefined;
  afterEach(() => cleanupAll(m, dir));

  const config = (d: string, log?: Record<string, unknown>) =>
    writeConfig(d, {
      name: 'log-reload',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: nodeWorker(), count: 1, readyTimeoutMs: 10000, stopTimeoutMs: 10000 },
      ...(log ? { log } : {}),
    });

  test('log.file is a folder: the reload is refused, generation 1 keeps serving, the log stays on stderr; a good log.file then reloads', async () => {
    dir = tmpdir();
    const cfg = config(dir);
    m = startMaster(cfg);
    const s0 = await ready(m);
    const port = portOf(s0);
    const before = JSON.parse((await get(port)).body).pid;

    config(dir, { file: dir });
    const r = baton(['reload', '-c', cfg]);
    expect(r.code).toBe(1);
    const s = await m.status();
    expect(s.phase).toBe('running');
    expect(s.generation).toBe(1);
    expect(s.generations.map((g) => [g.id, g.state])).toEqual([[1, 'serving']]);
    expect(JSON.parse((await get(port)).body).pid).toBe(before);
    expect(s.log.target).toMatch(/^stderr/);
    const why = `${cfg}: /log/file: '${dir}': it is a folder, not a regular file`;
    expect(r.stderr).toBe(`baton: reload failed: ${why}\n`);
    expect(s.lastReload).toMatchObject({ ok: false, error: why });
    await waitFor('the refusal in the log', () => m!.output().includes(`reload failed, generation 1 keeps serving: ${why}`));

    const file = path.join(dir, 'baton.log');
    config(dir, { file });
    const ok = baton(['reload', '-c', cfg]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const s2 = await m.status();
    expect(s2.generation).toBe(2);
    expect(s2.log.target).toBe(`file ${file}`);
    await waitFor('the reload line in log.file', () => /reload done: generation 2 serving/.test(fs.readFileSync(file, 'utf8')));
    expect((await get(port)).status).toBe(200);
  });

  test('log.file in a missing folder: check refuses it (78, /log/file named), a reload is refused and generation 1 keeps serving', async () => {
    dir = tmpdir();
    const cfg = config(dir);
    m = startMaster(cfg);
    const s0 = await ready(m);
    const port = portOf(s0);

    const missing = path.join(dir, 'no-such-folder', 'baton.log');
    config(dir, { file: missing });
    const c = baton(['check', '-c', cfg]);
    expect(c.code).toBe(78);
    expect(c.stderr).toContain(`/log/file: '${missing}': its folder '${path.dirname(missing)}' is not an existing folder`);

    const r = baton(['reload', '-c', cfg]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/log/file');
    const s = await m.status();
    expect(s.phase).toBe('running');
    expect(s.generations.map((g) => [g.id, g.state])).toEqual([[1, 'serving']]);
    expect(s.lastReload).toMatchObject({ ok: false, error: expect.stringContaining('/log/file') });
    expect((await get(port)).status).toBe(200);
  });
});
