import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { baton, cleanup, isAlive, portOf, ready, startMaster, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

// A worker that leaves a child in its process group: the child ignores SIGTERM and holds
// the listening socket (fd 3), as a careless program's forked helper would. Its pid goes
// to child.<generation> in the worker's folder.
const STUBBORN = ['sh', '-c', '(trap "" TERM; exec sleep 600) & echo $! > child.$BATON_GENERATION; wait'];

function childPid(dir: string, generation: number): Promise<number> {
  const f = path.join(dir, `child.${generation}`);
  return waitFor(`the child of generation ${generation}`, () => {
    const t = fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim() : '';
    return /^\d+$/.test(t) ? Number(t) : undefined;
  });
}

/** Whether something accepts connections on 127.0.0.1:port (a listening socket's backlog does). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('everything a worker started is gone at the stop deadline', () => {
  let m: Master | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await cleanup(m);
    m = undefined;
    // whatever a failed test left: the children were re-parented away from the master
    for (const f of dir ? fs.readdirSync(dir).filter((x) => x.startsWith('child.')) : []) {
      try {
        process.kill(Number(fs.readFileSync(path.join(dir!, f), 'utf8')), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  function start(extra: Record<string, unknown> = {}): Master {
    dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'hygiene',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: STUBBORN, ready: 'spawn', stopTimeoutMs: 1000, ...extra },
    });
    return startMaster(cfg);
  }

  test('reload: the old generation is reported stopped only once its worker\'s child is gone', async () => {
    m = start();
    await ready(m);
    const child = await childPid(dir!, 1);
    expect(baton(['reload', '-c', m.config]).code).toBe(0);
    await m.waitForOutput(/generation 1 has stopped/);
    expect(isAlive(child)).toBe(false);
    expect(m.output()).toMatch(/still running 1000 ms after SIGTERM: SIGKILL/);
    const s = await m.status();
    expect(s.generations.map((g) => [g.id, g.state])).toEqual([[2, 'serving']]);
  });

  test('stop: the master exits only once the child is gone, and nothing accepts on the socket after', async () => {
    m = start();
    const s = await ready(m);
    const port = portOf(s);
    const child = await childPid(dir!, 1);
    expect(baton(['stop', '-c', m.config]).code).toBe(0);
    expect(await m.exited).toEqual({ code: 0, signal: null });
    expect(isAlive(child)).toBe(false);
    expect(await accepts(port)).toBe(false);
  });

  test('failed start: a reload whose workers never get ready leaves no child and no generation behind', async () => {
    m = start();
    await ready(m);
    // the new generation waits for a READY=1 that never comes, then is stopped
    const cfg = JSON.parse(fs.readFileSync(m.config, 'utf8'));
    cfg.workers = { ...cfg.workers, ready: 'notify', readyTimeoutMs: 1000 };
    fs.writeFileSync(m.config, JSON.stringify(cfg));
    const r = baton(['reload', '-c', m.config]);
    expect(r.code).not.toBe(0);
    const child = await childPid(dir!, 2);
    await m.waitForOutput(/generation 2 has stopped/);
    expect(isAlive(child)).toBe(false);
    const s = await m.status();
    expect(s.generations.map((g) => [g.id, g.state])).toEqual([[1, 'serving']]);
  });

  test('crash: a worker that exits by itself takes its child with it before it is restarted', async () => {
    dir = tmpdir();
    // the first worker leaves a child and exits; its replacement (restarts=1) stays
    const cmd = ['sh', '-c', 'if [ ! -e child.1 ]; then (trap "" TERM; exec sleep 600) & echo $! > child.1; exit 3; fi; exec sleep 600'];
    m = startMaster(writeConfig(dir, { name: 'hygiene', listeners: [{ name: 'http', tcp: '127.0.0.1:0' }], workers: { command: cmd, ready: 'spawn' } }));
    await m.waitForOutput(/exited with status 3; restarting slot 0/);
    expect(isAlive(await childPid(dir, 1))).toBe(false);
  });
});
