// Long-lived connections across a reload through the Node adapter: WebSockets (the `ws`
// package) and an SSE stream stay on their old worker, which shows them in status while it
// drains, until the stop deadline; new ones land on the new generation.
import http from 'node:http';
import path from 'node:path';
import WebSocket from 'ws';
import { baton, batonAsync, childrenOf, cleanup, FIXTURES, portOf, ready, startMaster, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

const APP = path.join(FIXTURES, 'unmodified', 'ws-app.js');

/** A WebSocket and everything it was sent. */
function socket(port: number): Promise<{ ws: WebSocket; got: string[]; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    const got: string[] = [];
    let closed = false;
    ws.on('message', (m) => got.push(m.toString()));
    ws.on('close', () => (closed = true));
    ws.on('error', () => undefined);
    ws.once('open', () => resolve({ ws, got, closed: () => closed }));
    ws.once('unexpected-response', () => reject(new Error('no WebSocket upgrade')));
  });
}

/** An SSE stream: the events so far. */
function events(port: number): Promise<{ req: http.ClientRequest; got: string[]; ended: () => boolean }> {
  return new Promise((resolve) => {
    const got: string[] = [];
    let ended = false;
    const req = http.get({ host: '127.0.0.1', port, path: '/events', agent: false }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d: string) => got.push(...d.split('\n\n').filter(Boolean).map((e) => e.replace(/^data: /, ''))));
      res.on('close', () => (ended = true));
      resolve({ req, got, ended: () => ended });
    });
    req.on('error', () => (ended = true));
  });
}

describe('long-lived connections across a reload (the Node adapter)', () => {
  let m: Master | undefined;
  afterEach(() => cleanup(m));

  test('5 WebSockets and an SSE stream stay on their old worker (status counts them) until the deadline; new ones land on the new generation', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'long-lived',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: [process.execPath, APP], count: 1, readyTimeoutMs: 10000, stopTimeoutMs: 4000 },
    });
    m = startMaster(cfg);
    const s0 = await ready(m);
    const port = portOf(s0);
    const oldPid = s0.generations[0].workers[0].pid;
    const sockets = await Promise.all([1, 2, 3, 4, 5].map(() => socket(port)));
    const sse = await events(port);
    try {
      await waitFor('the greetings', () => sockets.every((s) => s.got.length === 1) && sse.got.length > 0);
      expect(sockets.map((s) => s.got[0])).toEqual(sockets.map(() => `pid ${oldPid} generation 1`));

      expect(baton(['reload', '-c', cfg]).code).toBe(0);
      await waitFor('the draining worker to count what it holds', async () =>
        ((await m!.status()).generations.find((g) => g.id === 1)?.workers[0]?.status ?? '') === 'stopping: 6 connection(s) open');
      // the old ones still work, on the old worker
      sockets.forEach((s, i) => s.ws.send(`m${i}`));
      await waitFor('the echoes', () => sockets.every((s) => s.got.length === 2));
      expect(sockets.map((s) => s.got[1])).toEqual(sockets.map((_, i) => `pid ${oldPid} generation 1 echo m${i}`));
      const ticks = sse.got.length;
      await waitFor('more SSE ticks from the draining worker', () => sse.got.length > ticks + 2);
      // a new one lands on generation 2
      const fresh = await socket(port);
      await waitFor('its greeting', () => fresh.got.length === 1);
      expect(fresh.got[0]).toMatch(/generation 2$/);
      fresh.ws.close();
      // the app never closes them: the stop deadline (stopTimeoutMs) does
      await waitFor('the old connections to be cut at the deadline', () => sockets.every((s) => s.closed()) && sse.ended(), 15000);
      await waitFor('generation 1 to be gone', async () => (await m!.status()).generations.map((g) => g.id).join() === '2', 15000);
    } finally {
      for (const s of sockets) s.ws.terminate();
      sse.req.destroy();
    }
  });

  test('20 reloads in 10 s with 50 WebSockets open across the generations: reload.maxDraining (2) keeps the draining workers under the cap, the oldest cut first', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'drain-cap-ws',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      reload: { maxDraining: 2 },
      // without the cap each generation would drain for a minute
      workers: { command: [process.execPath, APP], count: 1, readyTimeoutMs: 10000, stopTimeoutMs: 60000 },
    });
    m = startMaster(cfg);
    const port = portOf(await ready(m));
    const all: Array<{ ws: WebSocket; got: string[]; closed: () => boolean; generation: number }> = [];
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, childrenOf(m!.pid).length)), 5);
    const started = Date.now();
    try {
      for (let i = 1; i <= 20; i++) {
        // 3 new WebSockets on the serving generation before each of the first 10 reloads, 2 before the others: 50
        const opened = await Promise.all(Array.from({ length: i <= 10 ? 3 : 2 }, () => socket(port)));
        all.push(...opened.map((o) => ({ ...o, generation: i })));
        const r = await batonAsync(['reload', '-c', cfg]);
        expect({ i, code: r.code, stderr: r.stderr }).toEqual({ i, code: 0, stderr: '' });
      }
      const took = Date.now() - started;
      await waitFor('the greetings', () => all.every((s) => s.got.length >= 1));
      expect(all).toHaveLength(50);
      // each landed on the generation serving when it opened, or on the one just replaced (still
      // in accept() for a moment after the reload's answer)
      const landed = all.map((s) => Number(s.got[0].split(' ').at(-1)));
      expect(landed.filter((g, i) => g !== all[i].generation && g !== all[i].generation - 1)).toEqual([]);
      const draining = async () => (await m!.status()).generations.filter((g) => g.state === 'draining');
      await waitFor('the generations over the cap to be gone', async () => (await draining()).length <= 2, 10000);
      clearInterval(sampler);
      // the last two replaced generations (19 and 20) drain with their WebSockets; every older one was cut
      expect((await draining()).map((g) => g.id)).toEqual([19, 20]);
      await waitFor('the cut WebSockets to see their close', () => all.filter((_, i) => landed[i] < 19).every((s) => s.closed()));
      const kept = all.filter((_, i) => landed[i] >= 19);
      expect(kept.length).toBeGreaterThan(0);
      expect(kept.map((s) => s.closed())).toEqual(kept.map(() => false));
      // one serving, two draining, and for a moment a new one starting and the one being cut
      console.log(`20 reloads in ${took} ms with 50 WebSockets, maxDraining 2: at most ${most} workers at once`);
      expect(most).toBeLessThanOrEqual(5);
    } finally {
      clearInterval(sampler);
      for (const s of all) s.ws.terminate();
    }
  });
});
