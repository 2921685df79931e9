import { askMaster, ClientTimeoutError, findMaster, NoMasterError, waitForExit, type Target } from '../control/client';
import { identify, signalProcess, type ProcessId } from '../system/process';
import type { GenerationStatus, LastExit, ReplyTo, SocketOptionsStatus, StatusReply, WorkerStatus } from '../contract/control';
import { locateMaster, type MasterLocation, type OperationTimeouts } from '../config/load';
import { whyNoMaster } from './no-master';
import { watch } from './progress';
import { jsonForTerminal, terminalSafe, terminalSafeDeep } from './terminal-text';
import { VERSION } from '../version';

const out = (s: string) => process.stdout.write(s + '\n');
const err = (s: string) => process.stderr.write(`baton: ${terminalSafe(s, true)}\n`);

/** The master found a moment ago exited before it could be signalled. */
function gone(pid: number): number {
  err(`master pid ${pid} exited before it could be signalled`);
  return 1;
}

/** sysexits.h EX_TEMPFAIL: the master did not answer in time; it may still act (try again later). */
export const EX_TEMPFAIL = 75;

export interface ClientOptions {
  json?: boolean;
  fast?: boolean;
  /** --timeout SECONDS: how long to wait, instead of the command's default. */
  timeout?: number;
}

type ClientCommand = 'status' | 'reload' | 'upgrade' | 'stop';

/** Beyond the config's own limits: the master's steps around them, a busy machine. */
const MARGIN_MS = 30_000;

/** How long a command waits by default: a quick answer, or what the operation may take by the config on disk. */
function defaultWaitMs(cmd: ClientCommand, t: OperationTimeouts): number {
  switch (cmd) {
    case 'status':
      return 10_000;
    // a new worker killed before it was ready by a signal burst is started again once; then the soak
    case 'reload':
      return 2 * t.readyMs + t.soakMs + MARGIN_MS;
    // the successor ready within upgrade.timeoutMs of its start, its soak, in control within upgrade.timeoutMs of its confirmation
    case 'upgrade':
      return 2 * t.upgradeMs + t.soakMs + MARGIN_MS;
    case 'stop':
      return t.stopMs + MARGIN_MS;
  }
}

/** What a command that timed out was waiting for, and what may still happen. */
const WAITED: Record<ClientCommand, string> = {
  status: 'the master to answer `status`; it may be stopped (SIGSTOP) or stuck',
  reload: "the reload's outcome; the master may still complete it",
  upgrade: "the upgrade's outcome; the master may still complete it or roll it back",
  stop: 'the master to exit; it may still be stopping',
};

/**
 * Runs a client command with its deadline: on ClientTimeoutError it says what it waited for
 * and what to do, and exits EX_TEMPFAIL. A request the master had not read yet is dropped
 * (the connection is closed); one it had read goes on.
 */
async function withDeadline(
  cmd: ClientCommand,
  file: string,
  o: ClientOptions,
  body: (loc: MasterLocation & { timeouts: OperationTimeouts }, deadline: number) => Promise<number>,
): Promise<number> {
  const loc = locateMaster(file);
  const ms = o.timeout !== undefined ? o.timeout * 1000 : defaultWaitMs(cmd, loc.timeouts);
  try {
    return await body(loc, Date.now() + ms);
  } catch (e) {
    if (!(e instanceof ClientTimeoutError)) throw e;
    err(
      `timed out after ${ms / 1000} s waiting for ${WAITED[cmd]} (${e.message}). ` +
        `See \`baton status -c ${loc.file}\`, \`systemctl status\` and the master's log; --timeout SECONDS waits longer`,
    );
    return EX_TEMPFAIL;
  }
}

/** "no baton master is running …", and what may be why (cli/no-master.ts), a line each. */
export function noMasterText(e: NoMasterError, loc: MasterLocation): string {
  return [e.message, ...whyNoMaster(loc).map((w) => `  ${w}`)].join('\n');
}

async function target(loc: MasterLocation): Promise<Target | number> {
  try {
    return await findMaster(loc);
  } catch (e) {
    if (e instanceof NoMasterError) {
      err(noMasterText(e, loc));
      return 3;
    }
    throw e;
  }
}

/**
 * Asks the master to `cmd` and waits for its answer. Without a control socket it can only
 * send `signal` and say that the outcome cannot be awaited (null: nothing more to print).
 */
async function ask<R extends { cmd: 'reload' } | { cmd: 'upgrade' }>(
  loc: MasterLocation,
  deadline: number,
  req: R,
  signal: NodeJS.Signals,
): Promise<Extract<ReplyTo<R>, { ok: true }> | number | null> {
  const t = await target(loc);
  if (typeof t === 'number') return 1;
  if (t.kind === 'pid') {
    if (!signalProcess(t.proc, signal)) return gone(t.pid);
    err(`sent ${signal} to pid ${t.pid}, but cannot wait for the outcome (${t.why}); see the master's log`);
    return null;
  }
  const progress = watch(t, req.cmd);
  let reply;
  try {
    ({ reply } = await askMaster(t, req, deadline));
  } finally {
    progress.stop();
  }
  if (!reply.ok) {
    err(reply.error);
    return 1;
  }
  return reply as Extract<ReplyTo<R>, { ok: true }>;
}

export function reloadCommand(file: string, o: ClientOptions): Promise<number> {
  return withDeadline('reload', file, o, async (loc, deadline) => {
    const reply = await ask(loc, deadline, { cmd: 'reload' }, 'SIGHUP');
    if (reply === null || typeof reply === 'number') return reply ?? 0;
    out(`reloaded: generation ${reply.generation} serving (${reply.ms} ms)`);
    return 0;
  });
}

export function upgradeCommand(file: string, o: ClientOptions): Promise<number> {
  return withDeadline('upgrade', file, o, async (loc, deadline) => {
    const reply = await ask(loc, deadline, { cmd: 'upgrade' }, 'SIGUSR2');
    if (reply === null || typeof reply === 'number') return reply ?? 0;
    if (reply.manual) {
      out(`successor pid ${reply.newPid} is ready beside master pid ${reply.oldPid} after ${reply.ms} ms (manual mode): ` +
        `finish with WINCH then QUIT to ${reply.oldPid}, or roll back with HUP to ${reply.oldPid} and QUIT to ${reply.newPid}`);
    } else {
      out(`upgraded: master pid ${reply.oldPid} -> ${reply.newPid} in ${reply.ms} ms`);
    }
    return 0;
  });
}

export function stopCommand(file: string, o: ClientOptions): Promise<number> {
  return withDeadline('stop', file, o, async (loc, deadline) => {
    const t = await target(loc);
    if (typeof t === 'number') return 1;
    const t0 = Date.now();
    let pid: number;
    let proc: ProcessId | undefined;
    let successor: number | undefined;
    let progress: ReturnType<typeof watch> | undefined;
    if (t.kind === 'pid') {
      ({ pid, proc } = t);
      if (!signalProcess(proc, o.fast ? 'SIGINT' : 'SIGTERM')) {
        // exited since it was found: stopped already
        out(`stopped: master pid ${pid} had exited already`);
        return 0;
      }
    } else {
      const { reply, pid: peer } = await askMaster(t, { cmd: 'stop', fast: o.fast === true }, deadline);
      if (!reply.ok) {
        err(reply.error);
        return 1;
      }
      // the pid the kernel names (SO_PEERCRED), not one the answer claims
      pid = peer;
      successor = reply.handedOverTo;
      progress = watch(t, 'stop', true);
      // the master answered a moment ago: this pid is still its own
      proc = identify(pid);
    }
    try {
      await waitForExit(proc, deadline);
    } finally {
      progress?.stop();
    }
    const took = Date.now() - t0;
    const held = progress?.last()?.generations.some((g) => g.workers.some((w) => w.state !== 'exited'));
    // the master SIGKILLs what is left at workers.stopTimeoutMs: a stop that lasted that long cut something
    if (o.fast) err('a fast stop: every worker was killed at once (SIGKILL); requests in flight were cut');
    else if (held && took >= loc.timeouts.stopMs) {
      err(`workers were still running at the deadline (workers.stopTimeoutMs, ${loc.timeouts.stopMs} ms): SIGKILLed, and the requests they held were cut`);
    }
    // side by side (a manual upgrade), the stop finished the upgrade: the service goes on
    if (successor !== undefined) out(`handed over: master pid ${pid} exited after ${took} ms; its successor, pid ${successor}, serves on (baton stop again stops it)`);
    else out(`stopped: master pid ${pid} exited after ${took} ms`);
    return 0;
  });
}

export function statusCommand(file: string, o: ClientOptions): Promise<number> {
  return withDeadline('status', file, o, async (loc, deadline) => {
    const t = await target(loc);
    if (typeof t === 'number') return t;
    if (t.kind === 'pid') {
      if (o.json) out(JSON.stringify({ pid: t.pid, detail: null, why: t.why, installedVersion: VERSION }));
      else out(`master pid ${t.pid} is running; no details: ${t.why}`);
      return 0;
    }
    const { reply } = await askMaster(t, { cmd: 'status' }, deadline);
    if (!reply.ok) {
      err(reply.error);
      return 1;
    }
    if (o.json) {
      out(jsonForTerminal({ ...reply, installedVersion: VERSION }));
      return 0;
    }
    printStatus(reply);
    return 0;
  });
}

/**
 * This client is the installed code; the master reports the version it runs. They differ
 * after a package upgrade whose hot upgrade failed (the old master keeps serving): say so,
 * why, and how to finish it.
 */
function printVersionSkew(r: StatusReply): void {
  const last = r.upgrade?.last;
  if (last && !last.ok) out(`  last upgrade ${last.at}: failed: ${last.error}`);
  if (r.version === VERSION) return;
  out(`  installed  baton ${VERSION}, but the master runs ${r.version}` +
    (last && !last.ok ? ': its last upgrade failed (above)' : ': no upgrade since the installation'));
  out(`             to run ${VERSION}: ${last && !last.ok ? 'fix that, then ' : ''}baton upgrade -c ${r.config}`);
}

export function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

/** A socket's options in one line: those switched on, the sizes, what differs from 0. */
function optionsText(o: SocketOptionsStatus): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    const keepAliveDetail = /^keepAlive.+/.test(k) && !o.keepAlive;
    if (v === false || v === '' || keepAliveDetail || (v === 0 && /^(deferAcceptSec|mark|ipTOS|priority)$/.test(k))) continue;
    parts.push(v === true ? k : `${k}=${v}`);
  }
  return parts.join(' ') || '(no options)';
}

/** Memory in binary units, as config sizes are written: 512K, 31.2M, 1.25G. */
export function bytes(n: number): string {
  if (n < 2 ** 20) return `${Math.round(n / 1024)}K`;
  if (n < 2 ** 30) return `${(n / 2 ** 20).toFixed(1)}M`;
  return `${(n / 2 ** 30).toFixed(2)}G`;
}

/** "crash, status 1, 3s ago" */
export function exitText(e: LastExit, now = Date.now()): string {
  const how = e.code !== null ? `status ${e.code}` : e.signal ?? 'not started';
  return `${e.why}, ${how}, ${duration(Math.max(0, now - Date.parse(e.at)))} ago`;
}

/** A worker's cost columns: cpu, pss, rss, procs ('-' where an older master, or a group gone a moment ago, gave none). */
export function costColumns(w: Pick<WorkerStatus, 'cpu' | 'memory'>): string[] {
  const m = w.memory;
  return [w.cpu ? `${w.cpu.percent.toFixed(1)}%` : '-', m?.pssBytes != null ? bytes(m.pssBytes) : '-', m ? bytes(m.rssBytes) : '-', m ? String(m.processes) : '-'];
}

/** A generation's rows: its workers, then its slots in backoff, by slot. */
export function slotRows(g: GenerationStatus): Array<{ slot: number; worker?: WorkerStatus; nextStartAt?: string; lastExit?: LastExit }> {
  const rows = [...g.workers.map((w) => ({ slot: w.slot, worker: w, lastExit: w.lastExit })), ...(g.backoff ?? []).map((b) => ({ slot: b.slot, nextStartAt: b.nextStartAt, lastExit: b.lastExit }))];
  return rows.sort((a, b) => a.slot - b.slot);
}

/** A slot in backoff: "next start in 3s" (rounded up: never "in 0s" before it). */
export function nextStartText(nextStartAt: string, now = Date.now()): string {
  return `next start in ${duration(Math.max(0, Date.parse(nextStartAt) - now) + 999)}`;
}

const COST = ['cpu', 'pss', 'rss', 'procs'];
const COST_WIDTHS = [8, 9, 9, 6];
const cols = (cells: string[], widths: number[]) => cells.map((c, i) => c.padEnd(widths[i])).join('');

function printStatus(reply: StatusReply): void {
  // a worker's STATUS= (and any other text) printed as is could drive the terminal
  const r = terminalSafeDeep(reply);
  out(`${r.name}: baton ${r.version}, master pid ${r.pid}, ${r.phase}, up ${duration(r.uptimeMs)}`);
  printVersionSkew(r);
  out(`  config     ${r.config}`);
  if (r.master) out(`  master     rss ${bytes(r.master.rssBytes)}, cpu ${r.master.cpuPercent.toFixed(1)}% (${r.master.cpuSeconds.toFixed(2)} s in all)`);
  out(`  status     ${r.statusLine}`);
  if (r.workers?.auto) out(`  workers    count: ${r.workers.resolved} (auto: ${r.workers.auto})`);
  for (const l of r.listeners) {
    out(`  listener   ${l.name}: ${l.addresses.join(', ')} (from ${l.source})`);
    for (const o of l.options ?? []) out(`             ${optionsText(o)}`);
  }
  if (r.soak?.of === 'upgrade') out(`  upgrade    the successor's generation ${r.soak.generation} is ready and soaking beside this master's until ${r.soak.endsAt} (reload.soakMs); a worker of it failing before then rolls the upgrade back`);
  else if (r.soak) out(`  reload     generation ${r.soak.generation} is ready and soaking beside the old one until ${r.soak.endsAt} (reload.soakMs); a new worker failing before then reverts it`);
  const lr = r.lastReload;
  if (lr) out(`  last reload ${lr.at}: ${lr.ok ? `generation ${lr.generation} in ${lr.ms} ms` : `${lr.reverted ? 'reverted' : 'failed'}: ${lr.error}`}`);
  const lg = r.log;
  if (lg?.dropped) out(`  log        ${lg.target}: ${lg.failing ? `failing since ${lg.failing.since}: ${lg.failing.error}, ${lg.failing.dropped} line(s) dropped` : 'writing'}; ${lg.dropped} line(s) dropped in all`);
  if (r.watchdogKills) out(`  watchdog   ${r.watchdogKills} hung worker(s) killed since the master started`);
  for (const g of r.generations) {
    const kills = g.watchdogKills ? `, ${g.watchdogKills} killed by the watchdog` : '';
    const rc = g.recycles;
    const recycled = rc && rc.memory + rc.age > 0 ? `, recycled ${rc.memory} for memory and ${rc.age} for age` : '';
    out(`  generation ${g.id} (${g.state}, ${g.count} wanted${kills}${recycled})`);
    // a watchdog column only where a worker has one
    const watched = g.workers.some((w) => w.watchdogMs);
    const wd = (text: string) => (watched ? text.padEnd(10) : '');
    out(`    ${'slot'.padEnd(5)}${'pid'.padEnd(9)}${'state'.padEnd(10)}${'restarts'.padEnd(10)}${'uptime'.padEnd(9)}${wd('watchdog')}${cols(COST, COST_WIDTHS)}status`);
    const now = Date.now();
    for (const row of slotRows(g)) {
      const w = row.worker;
      out(
        w
          ? `    ${String(w.slot).padEnd(5)}${String(w.pid).padEnd(9)}${w.state.padEnd(10)}${String(w.restarts).padEnd(10)}${duration(w.uptimeMs).padEnd(9)}${wd(w.watchdogMs ? period(w.watchdogMs) : '-')}${cols(costColumns(w), COST_WIDTHS)}${w.recycling ? `(recycling: ${w.recycling}, its replacement starting) ` : ''}${w.status ?? ''}`
          : `    ${String(row.slot).padEnd(5)}${'-'.padEnd(9)}${'backoff'.padEnd(10)}${'-'.padEnd(10)}${'-'.padEnd(9)}${wd('-')}${cols(['-', '-', '-', '-'], COST_WIDTHS)}${nextStartText(row.nextStartAt!, now)}`,
      );
      if (row.lastExit) out(`         last exit: ${exitText(row.lastExit, now)}`);
    }
  }
}

/** A watchdog period: whole seconds as `30s`, else `1500ms`. */
function period(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
