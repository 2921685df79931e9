// The master's notify receiver, in process with real sockets: a taken name is skipped, never fatal.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { native, type NotifyReceiverHandle } from '../../src/native';
import { NotifyReceiver } from '../../src/systemd/receiver';
import { waitFor } from '../helpers/proc';

describe('NotifyReceiver', () => {
  const open: Array<{ close(): void }> = [];
  afterEach(() => open.splice(0).forEach((h) => h.close()));

  test('a name someone else has bound is skipped: the next random one is used', () => {
    const taken: NotifyReceiverHandle = native.notifyBind(`@baton/t/${process.pid}/taken`, () => undefined);
    open.push(taken);
    const tags = ['taken', 'free'];
    const r = new NotifyReceiver('t', new Set<number>(), () => undefined, () => tags.shift()!);
    open.push(r);
    expect(r.address).toBe(`@baton/t/${process.pid}/free`);
  });

  test('by default the name ends in 128 random bits, different each time', () => {
    const a = new NotifyReceiver('t', new Set<number>(), () => undefined);
    const b = new NotifyReceiver('t', new Set<number>(), () => undefined);
    open.push(a, b);
    expect(a.address).toMatch(new RegExp(`^@baton/t/${process.pid}/[0-9a-f]{32}$`));
    expect(a.address).not.toBe(b.address);
  });

  test('a message counts only from a worker (here: this process); anything else is dropped unread and counted', async () => {
    const got: Array<{ pid: number; worker: number; truncated: boolean; fields: Record<string, string> }> = [];
    const workers = new Set<number>();
    const r = new NotifyReceiver('t', workers, (s, f) => got.push({ ...s, fields: Object.fromEntries(f) }));
    open.push(r);
    native.notifySend(r.address, Buffer.from('READY=1'));
    await waitFor('the message to be dropped', () => r.dropped.notFromWorkers === 1);
    expect(got).toEqual([]);

    workers.add(process.pid);
    native.notifySend(r.address, Buffer.from('READY=1\nSTATUS=ok'));
    native.notifySend(r.address, Buffer.from('READY=1\nSTATUS=' + 'x'.repeat(5000)));
    await waitFor('both messages', () => got.length === 2);
    expect(got).toEqual([
      { pid: process.pid, worker: process.pid, truncated: false, fields: { READY: '1', STATUS: 'ok' } },
      { pid: process.pid, worker: process.pid, truncated: true, fields: {} },
    ]);
    expect(r.dropped).toEqual({ notFromWorkers: 1, truncated: 1 });
  });

  test('fds sent with messages are all closed (off the loop, by the closer thread): a flood of 2000 x 253 leaves none open, every message is read', async () => {
    const fdsNow = () => fs.readdirSync('/proc/self/fd').length;
    let got = 0;
    const h = native.notifyBind(`@baton/t/${process.pid}/fds`, (m) => {
      if (m.fds === 253) got++;
    });
    open.push(h);
    const base = fdsNow();
    const flood = [
      'import os, socket, struct, sys',
      "fds = [os.open('/dev/null', os.O_RDONLY) for _ in range(253)]",
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      'for i in range(2000):',
      "    s.sendmsg([b'X=1'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack('253i', *fds))], 0, '\\0' + sys.argv[1][1:])",
    ].join('\n');
    const p = spawn('python3', ['-c', flood, `@baton/t/${process.pid}/fds`], { stdio: 'inherit' });
    // the sender blocks while the queue is full; this loop reads meanwhile
    expect(await new Promise((r) => p.once('exit', r))).toBe(0);
    await waitFor('every message', () => got === 2000);
    await waitFor('the received fds to be closed', () => fdsNow() <= base, 5000);
  });

  test('a name that cannot be bound for another reason is an error naming it', () => {
    expect(() => new NotifyReceiver('x'.repeat(40), new Set<number>(), () => undefined, () => 'y'.repeat(100))).toThrow(/ENAMETOOLONG/);
  });
});
