import fs from 'node:fs';
import { hasExited, readProcStat } from './proc-stat';
import type { ProcessId } from './process';

/**
 * How long a process group may take to empty once SIGKILLed. A member still there after that
 * cannot be killed by baton: it gained another uid (a setuid program), or it is stuck in the
 * kernel (D state: a hung NFS or FUSE mount), where SIGKILL waits until the call returns.
 * Waiting for it longer would keep a slot from restarting and a stop from ever ending.
 */
export const KILL_GRACE_MS = 3000;
/** Pauses between two looks at a group: short at first (it usually empties at once), then long (each look may read all of /proc). */
const FIRST_POLL_MS = 20;
const MAX_POLL_MS = 400;
/** One look at /proc serves every group asked about within this long (many workers stopping at once). */
const SCAN_REUSE_MS = 20;
let last: { at: number; live: Map<number, ProcessId[]> } | null = null;

/** The live (not zombie) processes of each process group. */
function scan(notBefore: number): Map<number, ProcessId[]> {
  if (last && last.at > notBefore && Date.now() - last.at < SCAN_REUSE_MS) return last.live;
  const live = new Map<number, ProcessId[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const stat = readProcStat(Number(d)); // undefined: exited meanwhile
    if (!stat || hasExited(stat.state)) continue;
    const id = { pid: Number(d), startTicks: stat.startTicks };
    const ids = live.get(stat.pgid);
    if (ids) ids.push(id);
    else live.set(stat.pgid, [id]);
  }
  last = { at: Date.now(), live };
  return live;
}

/**
 * A process group baton started: a worker's, which leads it (its pid is the group's id).
 * The id is only a number, handed out again once the group is gone: before every look or
 * signal, the group must still be pinned by a process known to be in it. The kernel does not
 * reuse a pid while any process still has it as its pid, process group or session (a zombie
 * too), so while one process known to be in the group is still there (same pid, same start
 * time, same group), every process in group `pgid` is in this group. Known at first: the
 * leader (identified by its parent before reaping it, or reported so); then whatever a look
 * finds in the group while it is pinned, so a leader's children that outlive it keep it known.
 * Once no known process is left, the id may be a stranger's: it is never signalled again.
 */
export class ProcessGroup {
  readonly pgid: number;
  private known: ProcessId[];

  constructor(leader: ProcessId) {
    this.pgid = leader.pid;
    this.known = [leader];
  }

  /** A known process still in the group, if any; forgets them all once none is. */
  private pinnedBy(): ProcessId | undefined {
    for (const id of this.known) {
      const stat = readProcStat(id.pid);
      if (stat && stat.startTicks === id.startTicks && stat.pgid === this.pgid) return id;
    }
    this.known = [];
    return undefined;
  }

  /**
   * The group's live processes, from a look at /proc taken no earlier than `notBefore` (ms
   * since the epoch; an older one may predate the group); none once it is not ours any more.
   * Zombies do not count: they hold no socket, and an orphan's zombie waits for whoever
   * adopted it (pid 1 or a subreaper) to reap it, which baton cannot hurry and some container
   * inits never do.
   */
  members(notBefore = Date.now()): number[] {
    // the common answer, cheaply: nobody is left, zombies included
    if (!this.exists()) return [];
    const pin = this.pinnedBy();
    if (!pin) return [];
    const found = scan(notBefore).get(this.pgid) ?? [];
    // still pinned by the same process after the look: what it found is ours
    if (this.pinnedBy() !== pin) return [];
    this.known = [pin, ...found.filter((id) => id.pid !== pin.pid)];
    return found.map((id) => id.pid);
  }

  /**
   * The leader was reaped in this very turn of the loop (its parent's exit callback): until
   * then it pinned the group, so what is in the group now is ours, and known from now on.
   */
  leaderReaped(): void {
    if (!this.exists()) return;
    const found = scan(Date.now()).get(this.pgid) ?? [];
    this.known = [...this.known, ...found];
  }

  /** Whether any process (a zombie too) has group id `pgid`, ours or not: a cheap first look. */
  private exists(): boolean {
    try {
      process.kill(-this.pgid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    }
    return true;
  }

  /** Sends `signal` to the group if it is still ours; false once it has no process left (or is not ours). */
  signal(signal: NodeJS.Signals | 0): boolean {
    if (!this.pinnedBy()) return false;
    try {
      process.kill(-this.pgid, signal);
      return true;
    } catch (e) {
      // EPERM: what is left runs as another uid, yet it is there
      return (e as NodeJS.ErrnoException).code !== 'ESRCH';
    }
  }
}

/**
 * Resolves true once `group` has no live process (or is not ours any more), false if `abort`
 * fires first. Looks often at first, then every MAX_POLL_MS.
 */
export function whenEmpty(group: ProcessGroup, abort?: AbortSignal): Promise<boolean> {
  const since = Date.now();
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let pause = FIRST_POLL_MS;
    const aborted = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const look = () => {
      if (group.members(since).length === 0) {
        abort?.removeEventListener('abort', aborted);
        return resolve(true);
      }
      timer = setTimeout(look, pause);
      pause = Math.min(pause * 2, MAX_POLL_MS);
    };
    if (abort?.aborted) return resolve(false);
    abort?.addEventListener('abort', aborted, { once: true });
    look();
  });
}

async function emptyWithin(group: ProcessGroup, ms: number): Promise<boolean> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  try {
    return await whenEmpty(group, ac.signal);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Stops `group`, whose leader is not our child (a dead successor's worker): `signal`, SIGKILL
 * to whatever is left after `graceMs`, then up to KILL_GRACE_MS for that to work. Resolves
 * with the pids still running then: none, unless one could not be killed.
 */
export async function stopGroup(group: ProcessGroup, signal: NodeJS.Signals, graceMs: number): Promise<number[]> {
  if (!group.signal(signal)) return [];
  if (await emptyWithin(group, graceMs)) return [];
  group.signal('SIGKILL');
  if (await emptyWithin(group, KILL_GRACE_MS)) return [];
  return group.members();
}
