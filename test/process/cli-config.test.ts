import fs from 'node:fs';
import path from 'node:path';
import { baton, startMaster, tmpdir } from '../helpers/proc';

describe('baton check / run with a bad config', () => {
  test('check: exit 0 and a summary for a good config, 78 and the key path for a bad one', () => {
    const dir = tmpdir();
    const good = path.join(dir, 'good.json');
    fs.writeFileSync(good, JSON.stringify({ workers: { command: ['sh'] }, listeners: [{ name: 'http', tcp: '127.0.0.1:8080' }] }));
    const ok = baton(['check', '-c', good]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/is valid: 1 x \["sh"\], listeners: http=127.0.0.1:8080/);

    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ workers: { command: ['sh'], count: 0 }, typo: true }));
    const r = baton(['check', '-c', bad]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`config error in ${bad}:`);
    expect(r.stderr).toContain('/workers/count: must be >= 1');
    expect(r.stderr).toContain('/typo: unknown key');
  });

  test('check: a reload that may outlast systemd\'s default TimeoutStartSec= (readyTimeoutMs + soakMs) is valid, with a warning naming both', () => {
    const dir = tmpdir();
    const file = path.join(dir, 'soak.json');
    fs.writeFileSync(file, JSON.stringify({ workers: { command: ['sh'], readyTimeoutMs: 30000 }, reload: { soakMs: 80000 }, upgrade: { timeoutMs: 120000 } }));
    const r = baton(['check', '-c', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^baton: warning: \/reload\/soakMs: a reload may take workers.readyTimeoutMs \+ reload.soakMs = 110 s, over systemd's default TimeoutStartSec= \(90 s\)/);
    fs.writeFileSync(file, JSON.stringify({ workers: { command: ['sh'], readyTimeoutMs: 30000 }, reload: { soakMs: 60000 }, upgrade: { timeoutMs: 120000 } }));
    expect(baton(['check', '-c', file]).stderr).toBe('');
  });

  test('check: a rolling reload with a surge of 0 and one worker, a surge without rolling, a soak longer than upgrade.timeoutMs: exit 78, each named', () => {
    const dir = tmpdir();
    const file = path.join(dir, 'roll.json');
    fs.writeFileSync(file, JSON.stringify({ workers: { command: ['sh'], count: 1 }, reload: { strategy: 'rolling', surge: 0 } }));
    let r = baton(['check', '-c', file]);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 78, stderr: expect.stringContaining('/reload/surge: 0 with workers.count 1 would stop the only worker before its replacement starts') });
    fs.writeFileSync(file, JSON.stringify({ workers: { command: ['sh'] }, reload: { surge: 2, soakMs: 90000 } }));
    r = baton(['check', '-c', file]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('/reload/surge: only applies with reload.strategy "rolling"');
    expect(r.stderr).toContain('/reload/soakMs: 90000 ms is longer than upgrade.timeoutMs (60000 ms)');
  });

  test('check: a timeout under a second (readyTimeoutMs: 30, seconds meant) is valid, with a warning naming the key', () => {
    const dir = tmpdir();
    const file = path.join(dir, 'short.json');
    fs.writeFileSync(file, JSON.stringify({ workers: { command: ['sh'], readyTimeoutMs: 30 } }));
    const r = baton(['check', '-c', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('baton: warning: /workers/readyTimeoutMs: 30 ms is under a second: the value is in milliseconds (30 s would be 30000)\n');
  });

  test('check: a missing file is a config error too', () => {
    const r = baton(['check', '-c', '/nonexistent/baton.json']);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/cannot read the config file: ENOENT/);
  });

  test('run: exit 78 before anything starts, with the reason', async () => {
    const dir = tmpdir();
    const f = path.join(dir, 'svc.json');
    fs.writeFileSync(f, JSON.stringify({ runtimeDir: 'run', workers: { command: ['no-such-program-here'] } }));
    const m = startMaster(f);
    expect((await m.exited).code).toBe(78);
    expect(m.output()).toMatch(/\/workers\/command\/0: 'no-such-program-here' was not found in PATH/);
    expect(fs.existsSync(path.join(dir, 'run'))).toBe(false);
  });

  test('usage errors exit 2 with help', () => {
    const r = baton(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Unknown argument: frobnicate/);
    expect(baton(['run']).stderr).toMatch(/baton: give the config file \(-c FILE\) or the instance \(baton status api\)/);
  });

  // `COMMAND -c FILE` skips yargs (the unit's ExecStart=); every other shape still goes through it
  test('the short way past yargs and yargs read the same config, normalised; anything more is yargs', () => {
    const dir = tmpdir();
    fs.mkdirSync(path.join(dir, 'sub'));
    const f = path.join(dir, 'svc.json');
    fs.writeFileSync(f, JSON.stringify({ runtimeDir: 'run', workers: { command: ['no-such-program-here'] } }));
    const crooked = path.join(dir, 'sub', '..', '.', 'svc.json');
    for (const args of [['run', '-c', crooked], ['run', '--config', crooked], [`run`, `--config=${crooked}`], ['--config', crooked, 'run'], ['run', '-c', crooked, '--config', crooked]]) {
      const r = baton(args);
      expect([args, r.code]).toEqual([args, 78]);
      expect(r.stderr).toContain(`config error in ${f}:`);
    }
    const extra = baton(['run', '-c', f, 'frobnicate']);
    // a word after the command is the instance: given with -c too, a usage error
    expect(extra.code).toBe(2);
    expect(extra.stderr).toMatch(/baton: give the instance or -c FILE, not both/);
    expect(baton(['run', '-c', '--help']).code).toBe(0);
    // an empty value was read as '.' (EISDIR); now a usage error
    const empty = baton(['run', '--config=']);
    expect({ code: empty.code, stderr: empty.stderr }).toEqual({ code: 2, stderr: expect.stringContaining("baton: -c: give the config file's path") });
    // the client commands the same way: no master runs for it, named by its normalised path
    for (const args of [['status', '-c', crooked], ['status', '--json', '-c', crooked], ['stop', `--config=${crooked}`], ['stop', '--fast', '-c', crooked]]) {
      const r = baton(args);
      expect([args, r.code]).toEqual([args, args[0] === 'status' ? 3 : 1]);
      expect(r.stderr).toContain(`no baton master is running for ${f}`);
    }
  });

  test('client commands with no master running say so', () => {
    const dir = tmpdir();
    const f = path.join(dir, 'svc.json');
    fs.writeFileSync(f, JSON.stringify({ runtimeDir: 'run', workers: { command: ['sh'] } }));
    const s = baton(['status', '-c', f]);
    expect(s.code).toBe(3);
    expect(s.stderr).toMatch(/no baton master is running for .*svc\.json/);
    expect(baton(['reload', '-c', f]).code).toBe(1);
    expect(baton(['stop', '-c', f]).code).toBe(1);
  });
});
