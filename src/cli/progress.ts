// What `baton reload`, `upgrade` and `stop` show while they wait: the master's own status, asked
// for on a connection of its own every half second, as one line (workers ready n/m, a soak,
// draining generations and the connections they still hold), on a terminal only (stderr): the
// line is redrawn in place and wiped at the end. Piped (a script, a unit's ExecReload=), the
// output is the result's plain lines, as before. Progress is best effort, never an error.
import type { GenerationStatus, StatusReply } from '../contract/control';
import { askMaster, type SocketTarget } from '../control/client';
import { terminalSafe } from './terminal-text';

const EVERY_MS = 500;

export type Watched = 'reload' | 'upgrade' | 'stop';

/** Connections a draining worker still holds, from its STATUS= (baton/worker and the adapter say `stopping: N connection(s) open`). */
function openConnections(g: GenerationStatus): number {
  return g.workers.reduce((n, w) => n + Number(/^stopping: (\d+) connection/.exec(w.status ?? '')?.[1] ?? 0), 0);
}

/** The progress line of `what`, from the master's status; '' for nothing to say. */
export function progressLine(what: Watched, s: StatusReply, since: number): string {
  const parts: string[] = [];
  const ready = (g: GenerationStatus) => `${g.workers.filter((w) => w.state === 'ready').length}/${g.count} ready`;
  if (what === 'reload') {
    const next = s.generations.filter((g) => g.id !== s.generation && (g.state === 'starting' || g.state === 'serving')).at(-1);
    if (next) parts.push(`generation ${next.id}: ${ready(next)}`);
  }
  if (what === 'upgrade') parts.push(`${s.upgrade.state}${s.upgrade.successorPid ? ` (pid ${s.upgrade.successorPid})` : ''}`);
  if (s.soak) parts.push(`soaking for ${Math.max(0, Math.ceil((Date.parse(s.soak.endsAt) - Date.now()) / 1000))} s more`);
  for (const g of s.generations.filter((x) => x.state === 'draining' || (what === 'stop' && x.state !== 'failed'))) {
    const left = g.workers.filter((w) => w.state !== 'exited').length;
    const conns = openConnections(g);
    parts.push(`generation ${g.id} ${what === 'stop' ? 'stopping' : 'draining'}: ${left} worker(s)${conns ? `, ${conns} connection(s) open` : ''}`);
  }
  if (!parts.length) return '';
  return `${what}: ${parts.join('; ')} (${((Date.now() - since) / 1000).toFixed(1)} s)`;
}

/**
 * Shows progress on a terminal until stop() is called; `last` is the latest status seen
 * (`keep`: read it even when nothing is shown: stop's result uses it).
 */
export function watch(t: SocketTarget, what: Watched, keep = false): { stop(): void; last(): StatusReply | undefined } {
  const tty = Boolean(process.stderr.isTTY);
  if (!tty && !keep) return { stop: () => undefined, last: () => undefined };
  const since = Date.now();
  let shown = false;
  let last: StatusReply | undefined;
  let stopped = false;
  let busy = false;
  const timer = setInterval(() => {
    if (busy || stopped) return;
    busy = true;
    askMaster(t, { cmd: 'status' }, Date.now() + EVERY_MS * 4)
      .then(({ reply }) => {
        if (stopped || !reply.ok) return;
        last = reply;
        const line = terminalSafe(progressLine(what, reply, since), true);
        if (!line) return;
        if (!tty) return;
        process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns || 80) - 1)}`);
        shown = true;
      })
      .catch(() => undefined)
      .finally(() => (busy = false));
  }, EVERY_MS);
  timer.unref();
  return {
    stop: () => {
      stopped = true;
      clearInterval(timer);
      if (tty && shown) process.stderr.write('\r\x1b[2K');
    },
    last: () => last,
  };
}
