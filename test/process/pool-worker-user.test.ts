import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import {
  baton,
  cleanup,
  forAnyone,
  get,
  IS_ROOT,
  rootOnly,
  ready,
  startMaster,
  tmpdir,
  writeConfig,
  type Master,
} from '../helpers/proc';

if (!IS_ROOT) console.warn('worker-user.test.ts: skipped, switching the workers\' user needs a root master (run the tests as root)');

// Serves on fd 3 and answers who it is; READY=1 on NOTIFY_SOCKET, which must reach the
// master from another user too.
const WHOAMI = `
import http.server, json, os, socket
def notify(msg):
    a = os.environ["NOTIFY_SOCKET"]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(msg, "\\0" + a[1:] if a.startswith("@") else a)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = json.dumps({"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "egid": os.getegid(),
            "groups": sorted(set(os.getgroups())), "env": {k: os.environ.get(k) for k in ("HOME", "USER", "LOGNAME", "SHELL")},
            "capEff": [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff:")][0]}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H, bind_and_activate=False)
srv.socket = socket.socket(fileno=3)
notify(b"READY=1")
srv.serve_forever()
`;

function passwd(user: string): string[] {
  return spawnSync('getent', ['passwd', user], { encoding: 'utf8' }).stdout.trim().split(':');
}
function idGroups(user: string): number[] {
  return spawnSync('id', ['-G', user], { encoding: 'utf8' }).stdout.trim().split(/\s+/).map(Number).sort((a, b) => a - b);
}

/** A user of this system with supplementary groups (a member of some group besides its own), if any. */
function userWithSupplementaryGroups(): string | undefined {
  for (const line of spawnSync('getent', ['group'], { encoding: 'utf8' }).stdout.split('\n')) {
    for (const u of (line.split(':')[3] ?? '').split(',').filter(Boolean)) if (passwd(u).length >= 7 && idGroups(u).length > 1) return u;
  }
  return undefined;
}

/** A free privileged port on 127.0.0.1: 80 if free, else one below 1024. */
async function privilegedPort(): Promise<number> {
  for (const p of [80, ...Array.from({ length: 200 }, (_, i) => 1023 - i)]) {
    const free = await new Promise<boolean>((resolve) => {
      const s = net.createServer().once('error', () => resolve(false));
      s.listen(p, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (free) return p;
  }
  throw new Error('no free port below 1024');
}

rootOnly('workers.user and workers.group (root master)', () => {
  let m: Master | undefined;
  const dirs: string[] = [];
  afterEach(async () => {
    await cleanup(m);
    m = undefined;
  });
  afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

  async function whoami(workers: Record<string, unknown>): Promise<{ port: number; me: Record<string, unknown> }> {
    const dir = tmpdir();
    dirs.push(dir);
    const port = await privilegedPort();
    const cfg = writeConfig(dir, { name: 'users', listeners: [{ name: 'http', tcp: `127.0.0.1:${port}` }], workers: { command: ['python3', '-c', WHOAMI], ...workers } });
    m = startMaster(cfg);
    await ready(m);
    return { port, me: JSON.parse((await get(port)).body) };
  }

  test('nobody/nogroup: uid, gid, groups, HOME/USER/LOGNAME/SHELL as configured, no capabilities, serving on a privileged port the master bound', async () => {
    const pw = passwd('nobody');
    const gid = Number(spawnSync('getent', ['group', 'nogroup'], { encoding: 'utf8' }).stdout.split(':')[2]);
    const { port, me } = await whoami({ user: 'nobody', group: 'nogroup' });
    expect(port).toBeLessThan(1024);
    expect(me).toMatchObject({ uid: Number(pw[2]), euid: Number(pw[2]), gid, egid: gid });
    expect(me.groups).toEqual(idGroups('nobody'));
    expect(me.groups).not.toContain(0);
    expect(me.env).toEqual({ HOME: pw[5], USER: 'nobody', LOGNAME: 'nobody', SHELL: pw[6] });
    expect(me.capEff).toBe('0000000000000000');
  });

  test('numeric ids work too, and the group defaults to the user\'s primary group', async () => {
    const pw = passwd('nobody');
    const { me } = await whoami({ user: Number(pw[2]) });
    expect(me).toMatchObject({ uid: Number(pw[2]), gid: Number(pw[3]) });
    expect(me.env).toMatchObject({ USER: 'nobody' });
  });

  const supp = userWithSupplementaryGroups();
  (supp ? test : test.skip)(`the user's supplementary groups are kept (${supp ?? 'no user with supplementary groups here'})`, async () => {
    const { me } = await whoami({ user: supp });
    expect(me.groups).toEqual(idGroups(supp!));
    expect((me.groups as number[]).length).toBeGreaterThan(1);
  });

  test('check: an unknown user or group is exit 78 with the key path', () => {
    const dir = tmpdir();
    dirs.push(dir);
    const u = baton(['check', '-c', writeConfig(dir, { workers: { command: ['sleep', '1'], user: 'no-such-user-here' } })]);
    expect(u.code).toBe(78);
    expect(u.stderr).toMatch(/\/workers\/user: no user 'no-such-user-here' in the user database/);
    const g = baton(['check', '-c', writeConfig(dir, { workers: { command: ['sleep', '1'], user: 'nobody', group: 'no-such-group-here' } })]);
    expect(g.code).toBe(78);
    expect(g.stderr).toMatch(/\/workers\/group: no group 'no-such-group-here' in the group database/);
  });

  test('check by a master that is not root: another user is an error (it could not switch)', () => {
    const dir = tmpdir();
    dirs.push(dir);
    fs.chmodSync(dir, 0o755);
    const f = writeConfig(dir, { workers: { command: ['sleep', '1'], user: 'root' } });
    const anyone = forAnyone();
    const r = spawnSync(anyone.node, [anyone.baton, 'check', '-c', f], { encoding: 'utf8', uid: 65534, gid: 65534 });
    expect(r.stderr).toMatch(/\/workers\/user: baton runs as uid 65534, not root: it cannot start workers as 'root' \(uid 0\)/);
    expect(r.status).toBe(78);
  });
});
