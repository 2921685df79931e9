import fs from 'node:fs';
import path from 'node:path';
import { loadConfig, locateMaster } from '../../src/config/load';
import { ConfigError } from '../../src/config/types';
import * as cpus from '../../src/system/cpus';
import { availableCpus, type AvailableCpus } from '../../src/system/cpus';
import { tmpdir } from '../helpers/proc';

/** The config's problems, with the folder it is written to shown as <dir>, and $PATH as <PATH>. */
function problems(cfg: unknown, raw?: string): string[] {
  const dir = tmpdir();
  const f = path.join(dir, 'svc.json');
  fs.writeFileSync(f, raw ?? JSON.stringify(cfg));
  try {
    loadConfig(f);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((x) => x.split(dir).join('<dir>').split(process.env.PATH!).join('<PATH>'));
    throw e;
  }
  return [];
}

const MAX_MEMORY_UNIT = '/workers/maxMemory: must be a size with its unit, a number followed by K, M or G (1024-based), such as "512M"; a bare number is refused (bytes or megabytes?)';

describe('config', () => {
  test('a minimal config gets every default; paths resolve against its folder', () => {
    const dir = tmpdir();
    fs.mkdirSync(path.join(dir, 'app'));
    const f = path.join(dir, 'svc.json');
    fs.writeFileSync(f, JSON.stringify({ runtimeDir: 'run', workers: { command: ['node', 'x.js'], cwd: 'app' }, listeners: [{ name: 'u', unix: 's.sock' }, { name: 't', tcp: '8080' }] }));
    const c = loadConfig(f);
    expect(c.name).toBe('svc');
    expect(c.runtimeDir).toBe(path.join(dir, 'run'));
    expect(c.pidfile).toBe(path.join(dir, 'run', 'baton.pid'));
    expect(c.workers).toMatchObject({ count: 1, cwd: path.join(dir, 'app'), ready: 'notify', readyTimeoutMs: 30000, stopSignal: 'SIGTERM', stopTimeoutMs: 30000, env: {} });
    expect(c.upgrade).toEqual({ mode: 'auto', timeoutMs: 60000 });
    expect(c.reload).toEqual({ soakMs: 0, maxDraining: 4, strategy: 'generation', surge: 1 });
    expect(c.metrics).toBeUndefined();
    expect(c.log).toEqual({ level: 'info', format: 'text', file: undefined });
    expect(c.listeners![0]).toMatchObject({ name: 'u', mode: 0o660, bind: { kind: 'unix', path: path.join(dir, 's.sock') } });
    expect(c.listeners![1].bind).toMatchObject({ kind: 'tcp', host: '::', family: 6, port: 8080 });
  });

  test("a runtimeDir too long for an upgrade's control.sock.<pid> is refused; one that fits is not", () => {
    // sun_path holds 107 bytes: '/control.sock.4194304' takes 21 of them
    const fits = '/r' + 'x'.repeat(84);
    expect(problems({ runtimeDir: fits, workers: { command: ['sh'] } })).toEqual([]);
    expect(problems({ runtimeDir: fits + 'x', workers: { command: ['sh'] } })).toEqual([
      expect.stringMatching(/^\/runtimeDir: '\/rx+' is too long: the control socket path in it \(up to 108 bytes/),
    ]);
  });

  test.each([
    [{ workers: { command: ['sh'], count: 0 } }, '/workers/count: must be >= 1'],
    [{ workers: { command: ['sh'], count: 1025 } }, '/workers/count: must be <= 1024'],
    [{ workers: { command: ['sh'], count: 'two' } }, '/workers/count: must be an integer from 1 to 1024, or "auto" (one worker per CPU baton may run on)'],
    [{ workers: { command: ['sh'], count: 'max' } }, '/workers/count: must be an integer from 1 to 1024, or "auto" (one worker per CPU baton may run on)'],
    [{ workers: { command: ['sh'], count: 2.5 } }, '/workers/count: must be an integer from 1 to 1024, or "auto" (one worker per CPU baton may run on)'],
    [{ workers: { command: ['sh'] }, colour: 'blue' }, '/colour: unknown key'],
    [{ workers: { command: ['sh'], cmd: ['x'] } }, '/workers/cmd: unknown key'],
    [{ workers: { command: ['sh'] }, listners: [] }, '/listners: unknown key (did you mean listeners?)'],
    [{ workers: { command: ['sh'], readyTimeout: 5000 } }, '/workers/readyTimeout: unknown key (did you mean readyTimeoutMs?)'],
    [{ workers: { command: ['sh'], maxmemory: '1G' } }, '/workers/maxmemory: unknown key (did you mean maxMemory?)'],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', tcp: '80', nodelay: true }] }, '/listeners/0/nodelay: unknown key (did you mean noDelay?)'],
    [{ workers: {} }, '/workers/command: is required'],
    [{}, '/workers: is required'],
    [{ workers: { command: [] } }, '/workers/command: must NOT have fewer than 1 items'],
    [{ workers: { command: ['sh'], ready: 'yes' } }, '/workers/ready: must be one of "notify", "spawn"'],
    [{ workers: { command: ['sh'], stopSignal: 'SIGFOO' } }, "/workers/stopSignal: must be one of SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGKILL (workers ignore SIGHUP, SIGUSR2 and SIGWINCH, the master's signals: every stop would end in SIGKILL at stopTimeoutMs)"],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', tcp: '127.0.0.1:99999' }] }, "/listeners/0/tcp: '127.0.0.1:99999': port 99999 is out of range (0-65535)"],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', tcp: 'example.com:80' }] }, "/listeners/0/tcp: 'example.com:80': 'example.com' is not an IP address (host names are not resolved)"],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', tcp: '::1:80' }] }, "/listeners/0/tcp: '::1:80': write an IPv6 address in brackets, as [::1]:80"],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', tcp: ':80', unix: '/x' }] }, '/listeners/0: give either tcp or unix, not both'],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a' }, { name: 'a' }] }, "/listeners/1/name: 'a' is already the name of /listeners/0"],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', unix: '/x', mode: 'rw' }] }, '/listeners/0/mode: must be an octal file mode such as "0660"'],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a b' }] }, '/listeners/0/name: must be letters, digits or _ . @ - (pattern ^[A-Za-z0-9_.@-]{1,255}$)'],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', unix: '/x', keepAlive: true }] }, '/listeners/0/keepAlive: only applies to a tcp listener'],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', tcp: '80', user: 'root' }] }, "/listeners/0/user: only applies to a unix listener (the socket file's owner)"],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', noDelay: false }] }, '/listeners/0/noDelay: only applies to a socket baton binds (give tcp or unix); a socket from systemd is used as its .socket unit made it'],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', tcp: '127.0.0.1:80', bindIPv6Only: 'both' }] }, '/listeners/0/bindIPv6Only: only applies to an IPv6 address ([::]:PORT, *:PORT or PORT), not 127.0.0.1:80'],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', tcp: '80', bindIPv6Only: 'yes' }] }, '/listeners/0/bindIPv6Only: must be one of "default", "both", "ipv6-only"'],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', tcp: '80', receiveBuffer: '2G' }] }, "/listeners/0/receiveBuffer: '2G' is 2147483648 bytes; it must be from 1 to 1073741823 (INT_MAX / 2, what the kernel takes)"],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', tcp: '80', sendBuffer: '12X' }] }, '/listeners/0/sendBuffer: must be a size in bytes from 1 to 1073741823, or a number with K, M or G (1024-based) such as "256K"'],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', tcp: '80', ipTOS: 'fast' }] }, '/listeners/0/ipTOS: must be 0-255 or one of "low-delay", "throughput", "reliability", "low-cost"'],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', tcp: '80', bindToDevice: 'eth0/x' }] }, "/listeners/0/bindToDevice: must be a network interface name (1-15 characters, no '/', ':' or white space)"],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', tcp: '80', tcpCongestion: 'b b r' }] }, '/listeners/0/tcpCongestion: must be a congestion control algorithm name such as "bbr" (letters, digits, _ and -, at most 15)'],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', tcp: '80', keepAliveProbes: 200 }] }, '/listeners/0/keepAliveProbes: must be <= 127'],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', tcp: '80', mark: -1 }] }, '/listeners/0/mark: must be >= 0'],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', unix: '/x', user: 'no-such-user-here' }] }, "/listeners/0/user: no user 'no-such-user-here' in the user database (getent passwd)"],
    [{ workers: { command: ['sh'] }, listeners: [{ name: 'a', unix: '/x', group: 'no-such-group-here' }] }, "/listeners/0/group: no group 'no-such-group-here' in the group database (getent group)"],
    [{ workers: { command: ['no-such-program-here'] } }, "/workers/command/0: 'no-such-program-here' was not found in PATH (<PATH>)"],
    [{ workers: { command: ['./missing.sh'] } }, "/workers/command/0: './missing.sh' does not exist or is not an executable file"],
    [{ workers: { command: ['sh'], cwd: 'nowhere' } }, "/workers/cwd: '<dir>/nowhere' is not an existing folder"],
    [{ workers: { command: ['sh'] }, upgrade: { mode: 'magic' } }, '/upgrade/mode: must be one of "auto", "manual"'],
    [{ workers: { command: ['sh'], maxMemory: 512 } }, MAX_MEMORY_UNIT],
    [{ workers: { command: ['sh'], maxMemory: '536870912' } }, MAX_MEMORY_UNIT],
    [{ workers: { command: ['sh'], maxMemory: '512MB' } }, MAX_MEMORY_UNIT],
    [{ workers: { command: ['sh'], maxMemory: '0M' } }, "/workers/maxMemory: '0M' is no memory at all; leave the key out for no limit"],
    [{ workers: { command: ['sh'], maxMemorySamples: 2 } }, '/workers/maxMemorySamples: only applies with workers.maxMemory'],
    [{ workers: { command: ['sh'], maxAgeJitterMs: 1000 } }, "/workers/maxAgeJitterMs: only applies with workers.maxAgeMs (above 0): it is added to each worker's maximum age"],
    [{ workers: { command: ['sh'], maxAgeMs: -1 } }, '/workers/maxAgeMs: must be >= 0'],
    [{ workers: { command: ['sh'], sampleIntervalMs: 10 } }, '/workers/sampleIntervalMs: must be >= 100'],
    [{ workers: { command: ['sh'], maxRecycling: 0 } }, '/workers/maxRecycling: must be >= 1'],
    [{ workers: { command: ['sh'] }, metrics: { listen: 'localhost' } }, "/metrics/listen: 'localhost' is not ADDRESS:PORT (or an absolute path for a unix socket)"],
    [{ workers: { command: ['sh'] }, metrics: { listen: 'metrics.sock' } }, "/metrics/listen: 'metrics.sock' is not ADDRESS:PORT (or an absolute path for a unix socket)"],
    [{ workers: { command: ['sh'] }, metrics: {} }, '/metrics/listen: is required'],
    [{ workers: { command: ['sh'] }, reload: { surge: 2 } }, '/reload/surge: only applies with reload.strategy "rolling" (a generation reload starts every new worker at once)'],
    [{ workers: { command: ['sh'] }, reload: { strategy: 'chain' } }, '/reload/strategy: must be one of "generation", "rolling"'],
    [{ workers: { command: ['sh'], count: 1 }, reload: { strategy: 'rolling', surge: 0 } }, '/reload/surge: 0 with workers.count 1 would stop the only worker before its replacement starts: nothing would serve meanwhile; use a surge of 1 or more'],
    [
      { workers: { command: ['sh'] }, reload: { soakMs: 120000 } },
      '/reload/soakMs: 120000 ms is longer than upgrade.timeoutMs (60000 ms); a binary upgrade soaks as long as a reload, and the old master would wait longer for the successor to prove itself than it lets it take to start; raise upgrade.timeoutMs to at least reload.soakMs, or shorten the soak',
    ],
  ])('%j → %s', (cfg, expected) => {
    expect(problems(cfg)).toEqual([expected]);
  });

  test('listener options: sizes with K/M/G, ipTOS names, noDelay true by default for tcp only, user alone gives its group', () => {
    const dir = tmpdir();
    const f = path.join(dir, 'svc.json');
    fs.writeFileSync(f, JSON.stringify({ workers: { command: ['sh'] }, listeners: [
      { name: 't', tcp: '8080', receiveBuffer: '256K', sendBuffer: '1M', ipTOS: 'throughput', keepAlive: true },
      { name: 'f', tcp: '8081', noDelay: false },
      { name: 'u', unix: 'u.sock', receiveBuffer: 4096, user: process.getuid!() },
      { name: 'g', unix: 'g.sock', group: process.getgid!() },
    ] }));
    const c = loadConfig(f);
    expect(c.listeners!.map((l) => l.options)).toEqual([
      { noDelay: true, keepAlive: true, receiveBuffer: 256 * 1024, sendBuffer: 1024 * 1024, ipTOS: 0x08 },
      { noDelay: false },
      { receiveBuffer: 4096 },
      {},
    ]);
    expect(c.listeners!.map((l) => l.owner)).toEqual([undefined, undefined, { uid: process.getuid!(), gid: expect.any(Number) }, { uid: -1, gid: process.getgid!() }]);
  });

  test('recycling: maxMemory with its unit in bytes; no limit by default; the age jitter a tenth of the age unless given', () => {
    const dir = tmpdir();
    const f = path.join(dir, 'svc.json');
    fs.writeFileSync(f, JSON.stringify({ workers: { command: ['sh'] } }));
    expect(loadConfig(f).workers).toMatchObject({ maxMemory: undefined, maxMemorySamples: 3, sampleIntervalMs: 5000, maxAgeMs: 0, maxRecycling: 1 });
    fs.writeFileSync(f, JSON.stringify({ workers: { command: ['sh'], maxMemory: '512M', maxAgeMs: 3600000 } }));
    expect(loadConfig(f).workers).toMatchObject({ maxMemory: 512 * 2 ** 20, maxAgeMs: 3600000, maxAgeJitterMs: 360000 });
    fs.writeFileSync(f, JSON.stringify({ workers: { command: ['sh'], maxMemory: '2G', maxAgeMs: 60000, maxAgeJitterMs: 0, maxRecycling: 2 } }));
    expect(loadConfig(f).workers).toMatchObject({ maxMemory: 2 * 2 ** 30, maxAgeJitterMs: 0, maxRecycling: 2 });
  });

  test('workers.count "auto": what system/cpus.ts finds, kept for status; a number is kept as it is', () => {
    const dir = tmpdir();
    const f = path.join(dir, 'svc.json');
    fs.writeFileSync(f, JSON.stringify({ workers: { command: ['sh'], count: 'auto' } }));
    const found = availableCpus() as AvailableCpus;
    expect(loadConfig(f).workers).toMatchObject({ count: found.count, countAuto: found });
    fs.writeFileSync(f, JSON.stringify({ workers: { command: ['sh'], count: 3 } }));
    const fixed = loadConfig(f).workers;
    expect([fixed.count, fixed.countAuto]).toEqual([3, undefined]);
  });

  test('workers.count "auto" where the CPUs cannot be found: a config error naming the key and what to write instead', () => {
    const spy = jest.spyOn(cpus, 'availableCpus').mockReturnValue('cannot read /proc/self/status: EACCES');
    try {
      expect(problems({ workers: { command: ['sh'], count: 'auto' } })).toEqual([
        '/workers/count: "auto": cannot tell how many CPUs baton may run on (cannot read /proc/self/status: EACCES); write a number of workers (1 to 1024) instead',
      ]);
    } finally {
      spy.mockRestore();
    }
  });

  test('in one pass: the schema\'s problems, what it cannot say (tcp syntax, a key that needs another) and what needs the system (a user, the program) together', () => {
    const p = problems({
      listeners: [{ name: 'http', tcp: 'localhost' }],
      workers: { command: ['/nonexistent/worker'], count: 0, user: 'no-such-user-here', maxMemorySamples: 2 },
      extra: 1,
    });
    expect(p).toEqual(
      expect.arrayContaining([
        '/extra: unknown key',
        '/workers/count: must be >= 1',
        "/listeners/0/tcp: 'localhost' is not ADDRESS:PORT",
        '/workers/maxMemorySamples: only applies with workers.maxMemory',
        expect.stringMatching(/^\/workers\/user: .*no-such-user-here/),
        expect.stringMatching(/^\/workers\/command\/0: '\/nonexistent\/worker' does not exist/),
      ]),
    );
  });

  test('every problem is reported at once', () => {
    const p = problems({ workers: { command: ['sh'], count: 0, readyTimeoutMs: -1 }, extra: 1 });
    expect(p).toEqual(expect.arrayContaining(['/extra: unknown key', '/workers/count: must be >= 1', '/workers/readyTimeoutMs: must be >= 1']));
  });

  test('malformed JSON names the line and column', () => {
    const p = problems(undefined, '{\n  "workers": {\n    "command": ["sh"],\n  }\n}');
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^invalid JSON: .*line 4 column 3/);
  });

  test('locateMaster reads runtimeDir out of a file that is no longer JSON', () => {
    const dir = tmpdir();
    const f = path.join(dir, 'svc.json');
    fs.writeFileSync(f, '{ "runtimeDir": "rt", "workers": { "command": ["sh"], }');
    expect(locateMaster(f)).toEqual({
      file: f,
      name: 'svc',
      runtimeDir: path.join(dir, 'rt'),
      pidfile: path.join(dir, 'rt', 'baton.pid'),
      // the defaults: the client's deadlines cannot be read from it either
      timeouts: { readyMs: 30000, stopMs: 30000, upgradeMs: 60000, soakMs: 0 },
    });
  });
});
