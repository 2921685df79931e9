import fs from 'node:fs';
import { hasExited, readProcStat } from './proc-stat';

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
let last: { at: number; live: Map<number, number[]> } | null = null;

/** The live (not zombie) processes of each process group. */
function scan(notBefore: number): Map<number, number[]> {
  if (last && last.at > notBefore && Date.now() - last.at < SCAN_REUSE_MS) return last.live;
  const live = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const stat = readProcStat(Number(d)); // undefined: exited meanwhile
    if (!stat || hasExited(stat.state)) continue;
    const pids = live.get(stat.pgid);
    if (pids) pids.push(Number(d));
    else live.set(stat.pgid, [Number(d)]);
  }
  last = { at: Date.now(), live };
  return live;
}

/**
 * The live processes of process group `pgid`, from a look at /proc taken no earlier than
 * `notBefore` (ms since the epoch; an older one may predate the group). Zombies do not count:
 * they hold no socket, and an orphan's zombie waits for whoever adopted it (pid 1 or a
 * subreaper) to reap it, which baton cannot hurry and some container inits never do.
 */
export function groupMembers(pgid: number, notBefore = Date.now()): number[] {
  try {
    // the common answer, cheaply: nobody is left, zombies included
    process.kill(-pgid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return [];
  }
  return scan(notBefore).get(pgid) ?? [];
}

/**
 * Resolves true once process group `pgid` has no live process, false if `abort` fires first.
 * Looks often at first, then every MAX_POLL_MS.
 */
export function whenEmpty(pgid: number, abort?: AbortSignal): Promise<boolean> {
  const since = Date.now();
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    let pause = FIRST_POLL_MS;
    const aborted = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const look = () => {
      if (groupMembers(pgid, since).length === 0) {
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

async function emptyWithin(pgid: number, ms: number): Promise<boolean> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  try {
    return await whenEmpty(pgid, ac.signal);
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `signal` to process group `pgid`; false once it has no process left to send it to. */
function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (e) {
    // EPERM: what is left runs as another uid, yet it is there
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Stops process group `pgid` whose leader is not our child (a dead successor's worker):
 * `signal`, SIGKILL to whatever is left after `graceMs`, then up to KILL_GRACE_MS for that to
 * work. Resolves with the pids still running then: none, unless one could not be killed.
 */
export async function stopGroup(pgid: number, signal: NodeJS.Signals, graceMs: number): Promise<number[]> {
  if (!signalGroup(pgid, signal)) return [];
  if (await emptyWithin(pgid, graceMs)) return [];
  signalGroup(pgid, 'SIGKILL');
  if (await emptyWithin(pgid, KILL_GRACE_MS)) return [];
  return groupMembers(pgid);
}
