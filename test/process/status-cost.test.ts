// Issue 24 item 1: what `baton status` says each worker costs matches /proc, for a worker that
// is one process and for an `npm start`-like group (sh -> node -> a child); a crash-looping
// slot is shown waiting out its backoff, with its last exit; `baton top` piped repeats its table.
import path from 'node:path';
import type { StatusReply, WorkerStatus } from '../../src/contract/control';
import { readProcStat } from '../../src/system/proc-stat';
import { baton, batonAsync, cleanupAll, groupMembers as members, PAGE_SIZE as PAGE, ready, startMaster, statmRss, tmpdir, waitFor, writeConfig, type Master } from '../helpers/proc';
const ticks = (pids: number[]) => pids.reduce((n, p) => n + (readProcStat(p)?.cpuTicks ?? 0), 0);

/** Slot 0: node alone (exec). Slot 1: sh that runs node, which starts a child and spins 0.6 s. Slot 2: crashes (at once after its first run). */
function script(mark: string): string {
  const node = JSON.stringify(process.execPath);
  return `case "$BATON_WORKER_ID" in
0) exec ${node} -e 'setInterval(() => {}, 1e6)' ;;
1) ${node} -e 'require("child_process").spawn("sleep", ["1000"], { stdio: "ignore" }); for (const t = Date.now(); Date.now() - t < 600;); setInterval(() => {}, 1e6)'; exit $? ;;
*) [ -e ${mark} ] || { touch ${mark}; sleep 1; }; exit 3 ;;
esac`;
}

describe("status: each worker's memory and CPU, as /proc says; slots in backoff", () => {
  let m: Master | undefined;
  let dir: string | undefined;
  afterEach(() => cleanupAll(m, dir));

  test('a worker and an npm start-like group: processes, RSS, PSS, CPU seconds; the master too; a crash loop in backoff', async () => {
    dir = tmpdir();
    const cfg = writeConfig(dir, { name: 'cost', workers: { command: ['sh', '-c', script(path.join(dir, 'crashed-once'))], count: 3, ready: 'spawn', stopTimeoutMs: 2000 } });
    m = startMaster(cfg);
    await ready(m);
    const slot = (s: StatusReply, n: number) => s.generations[0].workers.find((w) => w.slot === n);
    const first = await m.status();
    const [one, group] = [slot(first, 0)!.pid, slot(first, 1)!.pid];
    await waitFor('sh, node and its child in the group', () => members(group).length === 3);
    await waitFor('the spin to be over', () => ticks(members(group)) >= 20);

    const before = { one: ticks([one]), group: ticks(members(group)) };
    const s = await m.status();
    const statm = { one: statmRss(one), group: members(group).reduce((n, p) => n + statmRss(p), 0), master: statmRss(m.pid) };
    const after = { one: ticks([one]), group: ticks(members(group)) };

    const check = (w: WorkerStatus, processes: number, rss: number, t0: number, t1: number) => {
      expect(w.memory?.processes).toBe(processes);
      // a node process may touch a few pages between the two reads
      expect(Math.abs(w.memory!.rssBytes - rss)).toBeLessThanOrEqual(Math.max(4 * PAGE, rss * 0.01));
      expect(w.memory!.pssBytes).toBeGreaterThan(0);
      expect(w.memory!.pssBytes!).toBeLessThan(w.memory!.rssBytes);
      expect(w.cpu!.seconds).toBeGreaterThanOrEqual(t0 / 100);
      expect(w.cpu!.seconds).toBeLessThanOrEqual(t1 / 100);
      expect(w.cpu!.percent).toBeGreaterThanOrEqual(0);
    };
    check(slot(s, 0)!, 1, statm.one, before.one, after.one);
    check(slot(s, 1)!, 3, statm.group, before.group, after.group);
    // the spin: 0.2 s or more since it started
    expect(slot(s, 1)!.cpu!.percent).toBeGreaterThan(0);
    // the master's heap may move a little between its answer and this read
    expect(Math.abs(s.master!.rssBytes - statm.master)).toBeLessThanOrEqual(statm.master * 0.1);
    expect(s.master!.cpuSeconds).toBeGreaterThan(0);

    // slot 2 crashes in a loop: 0, 100, 200, 400 ... ms between restarts
    const b = await waitFor('slot 2 in a backoff of a second or more', async () => {
      const x = (await m!.status()).generations[0];
      const bo = x.backoff?.find((y) => y.slot === 2);
      return bo && Date.parse(bo.nextStartAt) > Date.now() + 1000 && !x.workers.some((w) => w.slot === 2) && bo;
    });
    expect(b.lastExit).toEqual({ code: 3, signal: null, at: expect.any(String), why: 'crash' });
    expect(Date.now() - Date.parse(b.lastExit.at)).toBeLessThan(60_000);

    const table = baton(['status', '-c', cfg]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ {2}master {5}rss \d+\.\dM, cpu \d+\.\d% \(\d+\.\d\d s in all\)$/m);
    expect(table.stdout).toMatch(/^ {4}2 {4}- +backoff .*next start in \d+s$/m);
    expect(table.stdout).toMatch(/^ {9}last exit: crash, status 3, \d+s ago$/m);
    expect(table.stdout).toMatch(new RegExp(`^ {4}1 {4}${group} +ready +0 +\\S+ +\\d+\\.\\d% +\\d+\\.\\dM +\\d+\\.\\dM +3 `, 'm'));

    // piped, `top` prints its table every 2 s until it is stopped
    const top = await batonAsync(['top', '-c', cfg], 4500);
    expect(top.code).toBeNull();
    expect(top.stdout.match(/^GEN SLOT/gm)?.length).toBeGreaterThanOrEqual(2);
    expect(top.stdout).toMatch(new RegExp(`^1 {3}1 {4}${group} +ready .* 3 `, 'm'));
    expect(top.stdout).toMatch(/^1 {3}2 {4}- +backoff .*crash 3 \d+s ago +next start in/m);
  });
});

test('baton top with no master running says so and exits 3, as status does', () => {
  const dir = tmpdir();
  const cfg = writeConfig(dir, { name: 'none', workers: { command: ['sleep', '100'] } });
  const r = baton(['top', '-c', cfg]);
  expect(r).toEqual({ code: 3, stdout: '', stderr: expect.stringMatching(/^baton: no baton master is running for /) });
});
