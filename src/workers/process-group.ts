import fs from 'node:fs';

/** One look at /proc serves every group asked about within this long (many workers stopping at once). */
const SCAN_REUSE_MS = 20;
let last: { at: number; live: Map<number, number> } | null = null;

/** How many live (not zombie) processes each process group has. */
function scan(notBefore: number): Map<number, number> {
  if (last && last.at > notBefore && Date.now() - last.at < SCAN_REUSE_MS) return last.live;
  const live = new Map<number, number>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state !== 'Z' && state !== 'X') live.set(Number(pgrp), (live.get(Number(pgrp)) ?? 0) + 1);
  }
  last = { at: Date.now(), live };
  return live;
}

/**
 * How many live processes process group `pgid` has, from a look at /proc taken no earlier
 * than `notBefore` (ms since the epoch; an older one may predate the group). Zombies do not count: they hold no
 * socket, and an orphan's zombie waits for whoever adopted it (pid 1 or a subreaper) to reap
 * it, which baton cannot hurry and some container inits never do.
 */
export function groupSize(pgid: number, notBefore: number): number {
  try {
    // the common answer, cheaply: nobody is left, zombies included
    process.kill(-pgid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return 0;
  }
  return scan(notBefore).get(pgid) ?? 0;
}
