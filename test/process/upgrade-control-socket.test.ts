// Issue 10: `baton upgrade` (and the control reply to an upgrade request) returns only once
// the new master answers on control.sock. A status query sent right after the reply, with
// nothing in between (no sleep, no CLI start-up), must reach the new master: its reply says
// the new pid, and the kernel (SO_PEERCRED) says the same of whoever holds the socket.
import { exchange, type Peer } from '../../src/control/client';
import { controlSocketPath, type ReplyTo } from '../../src/contract/control';
import { batonAsync, isAlive, nodeWorker, waitFor } from '../helpers/proc';
import { startService, stopService, type Service as BaseService } from '../helpers/service';

type StatusAnswer = ReplyTo<{ cmd: 'status' }>;

/** A master under a subreaper (standing in for systemd as PID 1): fast to upgrade, one worker. */
interface Service extends BaseService {
  sock: string;
}

async function service(): Promise<Service> {
  const svc = await startService({
    name: 'upsock',
    listeners: [{ name: 'http', tcp: '127.0.0.1:0' }],
    workers: { command: nodeWorker(), count: 1, readyTimeoutMs: 10000, stopTimeoutMs: 5000 },
    upgrade: { timeoutMs: 5000 },
  });
  return Object.assign(svc, { sock: controlSocketPath(svc.runDir) });
}

/** What a status query sent right after the upgrade's answer found. */
interface Probe {
  i: number;
  oldPid: number;
  newPid: number;
  /** the pid the status reply names, and the one the kernel names for the socket's holder */
  replyPid?: number;
  peerPid?: number;
  phase?: string;
  error?: string;
}

/** The status query, sent at once; never throws (a refused connection is a finding too). */
async function statusNow(sock: string): Promise<{ reply?: StatusAnswer; peer?: Peer; error?: string }> {
  try {
    return await exchange(sock, { cmd: 'status' });
  } catch (e) {
    return { error: (e as Error).message };
  }
}

function probe(i: number, oldPid: number, newPid: number, r: { reply?: StatusAnswer; peer?: Peer; error?: string }): Probe {
  const p: Probe = { i, oldPid, newPid, error: r.error, peerPid: r.peer?.pid };
  if (r.reply && !r.reply.ok) p.error = r.reply.error;
  if (r.reply?.ok) {
    p.replyPid = r.reply.pid;
    p.phase = r.reply.phase;
  }
  return p;
}

const wrong = (p: Probe) => p.error !== undefined || p.replyPid !== p.newPid || p.peerPid !== p.newPid;

function describeProbe(p: Probe): string {
  const who = (pid: number | undefined) => (pid === p.newPid ? `the new master ${pid}` : pid === p.oldPid ? `the OLD master ${pid}` : `pid ${pid}`);
  if (p.error !== undefined) return `upgrade ${p.i} (${p.oldPid} -> ${p.newPid}): the status query failed: ${p.error}`;
  return `upgrade ${p.i} (${p.oldPid} -> ${p.newPid}): status answered by ${who(p.peerPid)} (SO_PEERCRED), saying pid ${p.replyPid} (${p.phase})`;
}

/** After the probe (not before the next one): the new master holds the socket, the old one has gone. */
async function settle(svc: Service, oldPid: number, newPid: number): Promise<void> {
  await waitFor(`the new master ${newPid} to answer on control.sock`, async () => {
    const r = await statusNow(svc.sock);
    return r.peer?.pid === newPid && r.reply?.ok && r.reply.pid === newPid;
  });
  await waitFor(`old master ${oldPid} to exit`, () => !isAlive(oldPid));
  expect(svc.master()).toBe(newPid);
}

function report(what: string, probes: Probe[]): void {
  const bad = probes.filter(wrong);
  console.log(`${what}: ${bad.length} of ${probes.length} status queries right after the upgrade's answer missed the new master` +
    (bad.length ? `:\n  ${bad.map(describeProbe).join('\n  ')}` : ''));
}

describe('an upgrade answers once the new master holds control.sock', () => {
  let svc: Service | undefined;
  afterEach(async () => {
    await stopService(svc);
    svc = undefined;
  });

  test('over the control socket: a status query right after the upgrade reply reaches the new master, 20 times in a row', async () => {
    svc = await service();
    const probes: Probe[] = [];
    for (let i = 1; i <= 20; i++) {
      const before = svc.master();
      const { reply, peer } = await exchange(svc.sock, { cmd: 'upgrade' });
      // no await of anything else between the upgrade's answer and the status query
      const r = await statusNow(svc.sock);
      if (!reply.ok) throw new Error(`upgrade ${i} failed: ${reply.error}\nthe masters' log:\n${svc.m.output()}`);
      const oldPid = reply.oldPid;
      const newPid = reply.newPid;
      expect(oldPid).toBe(before);
      expect(peer.pid).toBe(before);
      expect(reply.manual).toBe(false);
      expect(newPid).not.toBe(oldPid);
      probes.push(probe(i, oldPid, newPid, r));
      await settle(svc, oldPid, newPid);
    }
    report('over the control socket', probes);
    expect(probes.filter(wrong).map(describeProbe)).toEqual([]);
  });

  test('through the CLI: `baton upgrade` returns once the new master answers on control.sock, 3 times', async () => {
    svc = await service();
    const probes: Probe[] = [];
    for (let i = 1; i <= 3; i++) {
      const before = svc.master();
      const up = await batonAsync(['upgrade', '-c', svc.cfg]);
      const r = await statusNow(svc.sock);
      expect(up.stderr).toBe('');
      expect(up.code).toBe(0);
      const m = new RegExp(`^upgraded: master pid ${before} -> (\\d+) in \\d+ ms`).exec(up.stdout);
      if (!m) throw new Error(`unexpected output of baton upgrade: ${JSON.stringify(up.stdout)}`);
      const newPid = Number(m[1]);
      probes.push(probe(i, before, newPid, r));
      await settle(svc, before, newPid);
    }
    report('through the CLI', probes);
    expect(probes.filter(wrong).map(describeProbe)).toEqual([]);
  });
});
