// Issue 22, item 8: what connections to the control socket can hold in the master is bounded
// (connections, fds, memory for answers nobody reads), and the master keeps answering and
// restarting workers while someone holds as many as they can.
import fs from 'node:fs';
import net from 'node:net';
import { controlSocketPath } from '../../src/contract/control';
/** control/server.ts's MAX_CONNECTIONS (named here so that the test also runs against code without it). */
const MAX_CONNECTIONS = 32;
import { baton, cleanupAll, fdCount, ready, sleep, STATUS_WORKER, startMaster, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

/** VmRSS of `pid`, in MB. */
function rssMb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

/** `n` connections to the control socket, each connected (and, with `request`, having sent it). */
async function connectMany(sock: string, n: number, request?: string): Promise<net.Socket[]> {
  const conns = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Socket>((resolve) => {
          const c = net.connect(sock);
          // a connection the master closed is fine: it is what is tested
          c.on('error', () => undefined);
          c.once('connect', () => {
            if (request) c.write(request);
            resolve(c);
          });
          c.once('close', () => resolve(c));
        }),
    ),
  );
  // reading nothing: what the master sends stays in the kernel's buffer, then in its own
  for (const c of conns) c.pause();
  return conns;
}

describe('the control socket under many connections', () => {
  let m: Master | undefined;
  let dir: string | undefined;
  let conns: net.Socket[] = [];
  afterEach(async () => {
    conns.forEach((c) => c.destroy());
    conns = [];
    await cleanupAll(m, dir);
  });

  test(`200 idle connections: the master holds at most ${MAX_CONNECTIONS} (its fd count stays bounded), and status answers`, async () => {
    dir = tmpdir();
    const cfg = writeConfig(dir, { name: 'idle', workers: { command: STATUS_WORKER, env: { S: 'up' }, stopTimeoutMs: 3000 } });
    m = startMaster(cfg);
    await ready(m);
    const base = fdCount(m.pid);
    conns = await connectMany(controlSocketPath(m.runtimeDir), 200);
    await sleep(500);
    const held = fdCount(m.pid);
    expect(held).toBeLessThanOrEqual(base + MAX_CONNECTIONS + 2);
    const r = baton(['status', '-c', cfg]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/running/);
    await m.waitForOutput(/control socket: \d+ connection\(s\) with no request yet closed to make room \(at most 32 open\)/);
  });

  test('100 status requests on connections that never read: the master memory stays bounded, and status answers', async () => {
    dir = tmpdir();
    // 44 workers with a STATUS= of 4000 control characters: an answer of ~1 MB
    const cfg = writeConfig(dir, { name: 'unread', workers: { command: STATUS_WORKER, count: 44, env: { S: '\u0001'.repeat(4000) }, stopTimeoutMs: 3000 } });
    m = startMaster(cfg);
    await ready(m, 60000);
    const size = JSON.stringify(await m.status()).length;
    expect(size).toBeGreaterThan(1_000_000);
    const before = rssMb(m.pid);
    conns = await connectMany(controlSocketPath(m.runtimeDir), 100, '{"cmd":"status"}\n');
    await sleep(2000);
    const after = rssMb(m.pid);
    // figures for the note (jest prints console output of a passing test too)
    console.log(`control socket: answer ${(size / 1e6).toFixed(2)} MB; master VmRSS ${before.toFixed(0)} MB before, ${after.toFixed(0)} MB with 100 unread answers`);
    // at most MAX_CONNECTIONS answers held (each once as a string, once as the bytes the kernel did not take)
    expect(after - before).toBeLessThan((2 * MAX_CONNECTIONS * size) / 1e6 + 30);
    expect(baton(['status', '-c', cfg]).code).toBe(0);
  }, 120000);

  test('a crashed worker is started again while someone holds as many connections as they can (fd limit 128)', async () => {
    dir = tmpdir();
    const cfg = writeConfig(dir, { name: 'emfile', workers: { command: STATUS_WORKER, env: { S: 'up' }, stopTimeoutMs: 3000 } });
    m = startMaster(cfg, { wrapper: ['prlimit', '--nofile=128:128', '--'] });
    const s = await ready(m);
    const pid = s.generations[0].workers[0].pid;
    conns = await connectMany(controlSocketPath(m.runtimeDir), 200);
    await sleep(500);
    process.kill(pid, 'SIGKILL');
    const readyLines = /worker 0 \(pid (\d+)\) of generation 1 ready in/g;
    const again = await waitFor('the worker started again and ready', () => [...m!.output().matchAll(readyLines)].map((x) => Number(x[1])).find((p) => p !== pid), 15000);
    expect(again).not.toBe(pid);
    expect(m.output()).not.toMatch(/EMFILE/);
    expect(baton(['status', '-c', cfg]).code).toBe(0);
  });
});
