// `baton top`: what each worker costs, refreshed every 2 s. On a terminal: a full-screen view
// redrawn in place (the alternate screen, as top and systemd-cgtop), q or ^C quits and the
// terminal is as before; piped: the same table again and again, for a log or a script.
import fs from 'node:fs';
import { askMaster, ClientTimeoutError, findMaster, NoMasterError } from '../control/client';
import { locateMaster, type MasterLocation } from '../config/load';
import type { StatusReply } from '../contract/control';
import { workerText, WORKER_TEXT_MAX } from '../log/safe-text';
import { VERSION } from '../version';
import { bytes, costColumns, duration, EX_TEMPFAIL, nextStartText, noMasterText, slotRows, type ClientOptions } from './client-commands';
import type { LastExit } from '../contract/control';
import { terminalSafe, terminalSafeDeep } from './terminal-text';

export const REFRESH_MS = 2000;

const HEAD = ['gen', 'slot', 'pid', 'state', 'cpu', 'pss', 'rss', 'procs', 'uptime', 'restarts', 'last exit'];
const WIDTHS = [4, 5, 8, 9, 7, 8, 8, 6, 8, 9, 22];
const USED = WIDTHS.reduce((a, b) => a + b, 0);

/** "crash 3 5s ago", "watchdog SIGABRT 1m2s ago" */
function shortExit(e: LastExit, now: number): string {
  return `${e.why} ${e.code ?? e.signal ?? '-'} ${duration(Math.max(0, now - Date.parse(e.at)))} ago`;
}

function row(cells: string[]): string {
  return cells.map((c, i) => (c.length >= WIDTHS[i] ? `${c.slice(0, WIDTHS[i] - 2)}… ` : c.padEnd(WIDTHS[i]))).join('');
}

/** One view of `reply`, each line at most `width` characters; a worker's STATUS= escaped and cut (workerText). */
export function topLines(reply: StatusReply, now: number, width = Infinity): string[] {
  const r = terminalSafeDeep(reply);
  const clock = new Date(now).toTimeString().slice(0, 8);
  const m = r.master;
  const lines = [
    `${r.name}: baton ${r.version}, master pid ${r.pid}, ${r.phase}, up ${duration(r.uptimeMs)}  ${clock}`,
    `master rss ${m ? bytes(m.rssBytes) : '-'}, cpu ${m ? `${m.cpuPercent.toFixed(1)}%` : '-'}; ${r.statusLine}`,
    '',
    `${row(HEAD.map((h) => h.toUpperCase()))}STATUS`,
  ];
  const statusMax = Math.max(0, Math.min(WORKER_TEXT_MAX, width - USED));
  for (const [gi, g] of r.generations.entries()) {
    for (const x of slotRows(g)) {
      const w = x.worker;
      const last = x.lastExit ? shortExit(x.lastExit, now) : '-';
      // the raw text, escaped here once: terminalSafe's copy would be escaped twice
      const raw = w && reply.generations[gi].workers.find((y) => y.pid === w.pid)?.status;
      lines.push(
        w
          ? row([String(g.id), String(w.slot), String(w.pid), w.state, ...costColumns(w), duration(w.uptimeMs), String(w.restarts), last]) +
              (raw && statusMax > 0 ? workerText(raw, statusMax) : '')
          : row([String(g.id), String(x.slot), '-', 'backoff', '-', '-', '-', '-', '-', '-', last]) +
              nextStartText(x.nextStartAt!, now),
      );
    }
  }
  if (r.generations.length === 0) lines.push('(no workers)');
  return lines.map((l) => (l.length > width ? l.slice(0, width) : l));
}

/** A frame's status, or why there is none (a failure to show, and the exit code if it is the first). */
async function fetchStatus(loc: MasterLocation, o: ClientOptions): Promise<StatusReply | { error: string; code: number }> {
  try {
    const t = await findMaster(loc);
    if (t.kind === 'pid') return { error: `master pid ${t.pid} is running; no details: ${t.why}`, code: 1 };
    const { reply } = await askMaster(t, { cmd: 'status' }, Date.now() + (o.timeout ?? 10) * 1000);
    return reply.ok ? reply : { error: reply.error, code: 1 };
  } catch (e) {
    if (e instanceof NoMasterError) return { error: noMasterText(e, loc), code: 3 };
    if (e instanceof ClientTimeoutError) return { error: `no answer in ${o.timeout ?? 10} s: ${e.message}`, code: EX_TEMPFAIL };
    return { error: (e as Error).message, code: 1 };
  }
}

/** The terminal taken over: the alternate screen, no cursor, no line wrap, keys read one by one; put back by restore(), also on exit. */
function takeTerminal(quit: () => void): { draw(lines: string[]): void; restore(): void } {
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  let restored = false;
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const onKey = (d: Buffer) => {
    // q, Q, ^C (raw mode: a byte, no SIGINT), ^D
    if (d.some((b) => b === 0x71 || b === 0x51 || b === 0x03 || b === 0x04)) quit();
  };
  const restore = () => {
    if (restored) return;
    restored = true;
    for (const s of signals) process.off(s, quit);
    process.off('exit', restore);
    stdin.off('data', onKey);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
    // synchronous: also from the 'exit' event
    fs.writeSync(1, '\x1b[?7h\x1b[?25h\x1b[?1049l');
  };
  for (const s of signals) process.on(s, quit);
  process.on('exit', restore);
  if (raw) stdin.setRawMode(true);
  stdin.on('data', onKey);
  stdin.resume();
  fs.writeSync(1, '\x1b[?1049h\x1b[?25l\x1b[?7l');
  return {
    // home, each line then erase its rest, erase below: no flicker
    draw: (lines) => process.stdout.write(`\x1b[H${lines.map((l) => `${l}\x1b[K`).join('\n')}\x1b[J`),
    restore,
  };
}

export async function topCommand(file: string, o: ClientOptions): Promise<number> {
  const loc = locateMaster(file);
  let quit!: () => void;
  const quitting = new Promise<'quit'>((r) => (quit = () => r('quit')));
  // a reader that went away (head, a closed pager): done
  process.stdout.on('error', quit);
  const first = await Promise.race([fetchStatus(loc, o), quitting]);
  if (first === 'quit') return 0;
  if (!('ok' in first)) {
    process.stderr.write(`baton: ${terminalSafe(first.error, true)}\n`);
    return first.code;
  }
  const tty = process.stdout.isTTY === true ? takeTerminal(quit) : undefined;
  try {
    let frame: StatusReply | { error: string } = first;
    let lines: string[] = [];
    const show = () => {
      const width = tty ? process.stdout.columns || 80 : Infinity;
      lines = 'ok' in frame ? topLines(frame, Date.now(), width) : [`baton ${VERSION}: ${terminalSafe(frame.error.split('\n')[0])}; trying again every ${REFRESH_MS / 1000} s`];
      if (tty) tty.draw(lines);
      else process.stdout.write(`${lines.join('\n')}\n\n`);
    };
    process.stdout.on('resize', show);
    for (;;) {
      show();
      if ((await Promise.race([new Promise((r) => setTimeout(r, REFRESH_MS)), quitting])) === 'quit') return 0;
      const next = await Promise.race([fetchStatus(loc, o), quitting]);
      if (next === 'quit') return 0;
      frame = next;
    }
  } finally {
    tty?.restore();
  }
}
