import fs from 'node:fs';

/** Clock ticks per second in /proc (USER_HZ, sysconf(_SC_CLK_TCK)): 100 on every Linux architecture node runs on. */
export const TICKS_PER_SECOND = 100;

/** The fields of /proc/<pid>/stat that baton reads (proc(5)). */
export interface ProcStat {
  /** R, S, D, T, Z (zombie), X (dead), ... */
  state: string;
  ppid: number;
  pgid: number;
  /** When the process started, in clock ticks since boot. */
  startTicks: number;
  /** The CPU time it has used, user and system (utime + stime), in clock ticks. */
  cpuTicks: number;
}

/** Parses the text of /proc/<pid>/stat; undefined unless it looks like one. */
export function parseProcStat(text: string): ProcStat | undefined {
  // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = text.slice(close + 2).split(' ');
  const [ppid, pgid, startTicks, cpuTicks] = [Number(f[1]), Number(f[2]), Number(f[19]), Number(f[11]) + Number(f[12])];
  if (!f[0] || ![ppid, pgid, startTicks, cpuTicks].every(Number.isInteger)) return undefined;
  return { state: f[0], ppid, pgid, startTicks, cpuTicks };
}

/** Reads /proc/<pid>/stat; undefined once the process has been reaped. */
export function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Whether a process in `state` has exited (a zombie not yet reaped, or dead). */
export const hasExited = (state: string): boolean => state === 'Z' || state === 'X';

/** When the process started, in ms since the epoch (to the kernel's tick). */
export function startedAtMs(stat: ProcStat): number {
  const btime = Number(/^btime (\d+)/m.exec(fs.readFileSync('/proc/stat', 'utf8'))![1]);
  return btime * 1000 + (stat.startTicks * 1000) / TICKS_PER_SECOND;
}
