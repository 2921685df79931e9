import net from 'node:net';
import { cleanup, nodeWorker, portOf, ready, sleep, startMaster, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';

/** A raw HTTP/1.1 keep-alive connection, to see exactly what the server does with it. */
class RawClient {
  readonly sock: net.Socket;
  private buf = '';
  closedAt?: number;
  constructor(port: number) {
    this.sock = net.connect(port, '127.0.0.1');
    this.sock.setEncoding('utf8');
    this.sock.on('data', (d: string) => (this.buf += d));
    this.sock.on('close', () => (this.closedAt = Date.now()));
    this.sock.on('error', () => undefined);
  }
  connected(): Promise<void> {
    return new Promise((r) => this.sock.once('connect', () => r()));
  }
  async request(): Promise<{ status: number; headers: string; body: string }> {
    this.buf = '';
    this.sock.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    return waitFor('a whole response', () => {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const headers = this.buf.slice(0, end);
      const len = Number(/content-length: (\d+)/i.exec(headers)?.[1] ?? -1);
      const body = this.buf.slice(end + 4);
      if (len >= 0 && body.length < len) return undefined;
      return { status: Number(headers.split(' ')[1]), headers, body };
    });
  }
}

describe('baton/worker: stopping without losing a keep-alive request', () => {
  let m: Master | undefined;
  afterEach(() => cleanup(m));

  test('the next request on an open keep-alive connection is answered with Connection: close; a silent one is closed after idleGraceMs', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'ka',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: nodeWorker(), count: 1, env: { WORKER_IDLE_GRACE_MS: '1500' } },
    });
    m = startMaster(cfg);
    const s = await ready(m);
    const port = portOf(s);
    const busy = new RawClient(port);
    const silent = new RawClient(port);
    await Promise.all([busy.connected(), silent.connected()]);
    const first = await busy.request();
    expect(first.status).toBe(200);
    expect(first.headers).toMatch(/connection: keep-alive/i);
    const oldPid = JSON.parse(first.body).pid;

    m.proc.kill('SIGHUP');
    await m.waitForOutput(/stopping generation 1/);
    const stopAt = Date.now();
    await sleep(300);
    // the old worker still owns this connection: it answers, and says it is the last answer
    const second = await busy.request();
    expect(second.status).toBe(200);
    expect(JSON.parse(second.body).pid).toBe(oldPid);
    expect(second.headers).toMatch(/connection: close/i);
    await waitFor('the server to close the busy connection', () => busy.closedAt);

    // the connection that never sent anything is closed only after the idle grace period
    await waitFor('the silent connection to be closed', () => silent.closedAt, 10000);
    expect(silent.closedAt! - stopAt).toBeGreaterThanOrEqual(1000);
    await m.waitForOutput(/generation 1 has stopped/);
  });

  test('a connection idle for longer than idleGraceMs when the stop begins still gets the grace: a request sent then is answered', async () => {
    const dir = tmpdir();
    const cfg = writeConfig(dir, {
      name: 'ka-idle',
      listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
      workers: { command: nodeWorker(), count: 1, env: { WORKER_IDLE_GRACE_MS: '1000' } },
    });
    m = startMaster(cfg);
    const port = portOf(await ready(m));
    const c = new RawClient(port);
    await c.connected();
    const oldPid = JSON.parse((await c.request()).body).pid;
    // idle for twice the grace before the stop
    await sleep(2000);
    m.proc.kill('SIGHUP');
    await m.waitForOutput(/stopping generation 1/);
    await sleep(300);
    expect(c.closedAt).toBeUndefined();
    const last = await c.request();
    expect(JSON.parse(last.body).pid).toBe(oldPid);
    expect(last.headers).toMatch(/connection: close/i);
    await m.waitForOutput(/generation 1 has stopped/);
  });
});
