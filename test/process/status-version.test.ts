import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { get, isAlive, nodeWorker, tmpdir, waitFor } from '../helpers/proc';
import { startService, stopService, type Service } from '../helpers/service';

/** Runs the installed copy's bin/baton: the client is the code on disk, not the master's. */
function installed(bin: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('baton status after a package upgrade whose hot upgrade failed', () => {
  const dirs: string[] = [];
  let svc: Service | undefined;
  afterEach(async () => {
    await stopService(svc);
    svc = undefined;
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  test('shows the running version beside the installed one, why they differ and how to finish; `baton upgrade` after the fix completes it', async () => {
    // an installed copy of baton, whose package.json the package manager replaces
    const root = path.resolve(__dirname, '..', '..');
    const inst = tmpdir('baton-install-');
    dirs.push(inst);
    fs.cpSync(path.join(root, 'bin'), path.join(inst, 'bin'), { recursive: true });
    fs.cpSync(path.join(root, 'dist'), path.join(inst, 'dist'), { recursive: true });
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(inst, 'node_modules'));
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    fs.writeFileSync(path.join(inst, 'package.json'), JSON.stringify({ ...pkg, version: '1.0.0' }));
    const bin = path.join(inst, 'bin', 'baton');
    svc = await startService({ name: 'skew', listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: nodeWorker(), count: 1 } }, { baton: bin });
    const { cfg, m } = svc;
    const old = svc.first.pid;

    // the package is upgraded while the config on disk no longer validates
    fs.writeFileSync(path.join(inst, 'package.json'), JSON.stringify({ ...pkg, version: '1.1.0' }));
    svc.rewrite((c) => (c.workers.count = 0));
    const up = await installed(bin, ['upgrade', '-c', cfg]);
    expect(up.code).toBe(1);
    expect((await get(svc.port)).status).toBe(200);

    const text = await installed(bin, ['status', '-c', cfg]);
    expect(text.code).toBe(0);
    const lines = text.stdout.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^skew: baton 1\\.0\\.0, master pid ${old}, running`));
    expect(text.stdout).toMatch(/\n {2}last upgrade \S+: failed: the successor \(pid \d+\) failed: the code on disk refuses the config: .*\/workers\/count: must be >= 1/);
    expect(text.stdout).toContain('\n  installed  baton 1.1.0, but the master runs 1.0.0: its last upgrade failed (above)\n');
    expect(text.stdout).toContain(`to run 1.1.0: fix that, then baton upgrade -c ${cfg}\n`);
    const json = JSON.parse((await installed(bin, ['status', '-c', cfg, '--json'])).stdout);
    expect([json.version, json.installedVersion]).toEqual(['1.0.0', '1.1.0']);
    expect(json.upgrade.last).toMatchObject({ ok: false });

    // fixed: the upgrade completes, and the skew is gone
    svc.rewrite(() => undefined);
    const done = await installed(bin, ['upgrade', '-c', cfg]);
    expect(done.code).toBe(0);
    await waitFor('old master gone', () => !isAlive(old));
    const after = JSON.parse((await installed(bin, ['status', '-c', cfg, '--json'])).stdout);
    expect([after.version, after.installedVersion]).toEqual(['1.1.0', '1.1.0']);
    const clean = await installed(bin, ['status', '-c', cfg]);
    expect(clean.stdout).not.toMatch(/installed|last upgrade/);
    process.kill(after.pid, 'SIGTERM');
    expect((await m.exited).code).toBe(0);
  });
});
