import fs from 'node:fs';
import { hasExited, readProcStat, startedAtMs } from './proc-stat';

/** A process's parent pid; undefined once it has exited. */
export function parentPid(pid: number): number | undefined {
  return readProcStat(pid)?.ppid;
}

/** True while `pid` runs. A zombie (exited, not yet reaped by its parent) counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = readProcStat(pid);
  return stat !== undefined && !hasExited(stat.state);
}

/** A running process's real uid and start time (ms since the epoch, to the kernel's tick), from /proc. */
export function processInfo(pid: number): { uid: number; startedAtMs: number } | undefined {
  try {
    const uid = Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    const stat = readProcStat(pid);
    return stat && { uid, startedAtMs: startedAtMs(stat) };
  } catch {
    return undefined;
  }
}
