// What a worker costs: the memory and CPU of its whole process group (`npm start` -> sh ->
// node, a gunicorn arbiter and its workers), read from /proc in one pass.
import fs from 'node:fs';
import { hasExited, parseProcStat } from './proc-stat';

export { TICKS_PER_SECOND } from './proc-stat';

export interface GroupSample {
  pgid: number;
  /** Live members (zombies not counted). */
  processes: number;
  /** Resident memory, summed over the members: shared pages counted once per process. */
  rssBytes: number;
  /**
   * Proportional set size (smaps_rollup `Pss:`), summed: each shared page split between the
   * processes mapping it, what a pool of forked workers really costs. null when the smaps_rollup
   * of a member could not be read (a kernel before 4.14, another user's process): rssBytes then
   * comes from /proc/PID/status.
   */
  pssBytes: number | null;
  /** CPU time of the live members (utime + stime), in clock ticks (TICKS_PER_SECOND). */
  cpuTicks: number;
}

const KB = 1024;

// stat and smaps_rollup are short (a few hundred bytes): one read into a buffer kept between
// samples, no fstat, no chunks (readFileSync's way), and nothing to allocate but the text
const buf = Buffer.alloc(16 * 1024);

/** A short /proc file's text; undefined when it cannot be read (the process is gone, or not ours to read). */
function readShort(file: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    return buf.toString('latin1', 0, fs.readSync(fd, buf, 0, buf.length, null));
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

/** A process's Rss and Pss in bytes; undefined once it has gone (or has no memory: exiting). */
function memoryOf(pid: number): { rss: number; pss: number | null } | undefined {
  // undefined: no smaps_rollup (before 4.14), or not ours to read (ptrace access): status is readable by anyone
  const text = readShort(`/proc/${pid}/smaps_rollup`);
  if (text !== undefined) {
    const rss = /^Rss:\s+(\d+) kB/m.exec(text);
    const pss = /^Pss:\s+(\d+) kB/m.exec(text);
    return rss && pss ? { rss: Number(rss[1]) * KB, pss: Number(pss[1]) * KB } : undefined;
  }
  const rss = /^VmRSS:\s+(\d+) kB/m.exec(readShort(`/proc/${pid}/status`) ?? '');
  return rss ? { rss: Number(rss[1]) * KB, pss: null } : undefined;
}

/**
 * The groups `pgids` as they are now, each with at least one live member; a group with none
 * is left out. One pass over /proc: the stat of every process, then smaps_rollup of the
 * members only.
 */
export function sampleGroups(pgids: readonly number[]): Map<number, GroupSample> {
  const groups = new Map<number, GroupSample>();
  if (pgids.length === 0) return groups;
  for (const pgid of pgids) groups.set(pgid, { pgid, processes: 0, rssBytes: 0, pssBytes: 0, cpuTicks: 0 });
  for (const d of fs.readdirSync('/proc')) {
    const c = d.charCodeAt(0);
    if (c < 48 || c > 57) continue; // not a pid
    const pid = Number(d);
    const text = readShort(`/proc/${d}/stat`); // undefined: exited meanwhile
    const stat = text === undefined ? undefined : parseProcStat(text);
    const g = stat && groups.get(stat.pgid);
    if (!g || hasExited(stat.state)) continue;
    const mem = memoryOf(pid);
    if (!mem) continue;
    g.processes++;
    g.cpuTicks += stat.cpuTicks;
    g.rssBytes += mem.rss;
    g.pssBytes = g.pssBytes === null || mem.pss === null ? null : g.pssBytes + mem.pss;
  }
  for (const [pgid, g] of groups) if (g.processes === 0) groups.delete(pgid);
  return groups;
}
