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

/**
 * A process as baton recorded it: its pid and when it started (clock ticks since boot, field
 * 22 of /proc/<pid>/stat). A pid is reused once its process is gone; the start time tells the
 * process that had it from whoever has it now.
 */
export interface ProcessId {
  pid: number;
  startTicks: number;
}

/**
 * The process that has `pid` now (a zombie too); undefined once it has been reaped. Only
 * trustworthy while `pid` cannot have been reused: taken by the parent before it reaps the
 * child (right after spawn()), or by the process itself.
 */
export function identify(pid: number): ProcessId | undefined {
  const stat = readProcStat(pid);
  return stat && { pid, startTicks: stat.startTicks };
}

/** Whether `id.pid` is still the process recorded in `id` and has not exited (a zombie has). */
export function stillRunning(id: ProcessId): boolean {
  const stat = readProcStat(id.pid);
  return stat !== undefined && stat.startTicks === id.startTicks && !hasExited(stat.state);
}

/**
 * Sends `signal` to the process recorded in `id`, only if `id.pid` is still that process:
 * false (nothing sent) if it is gone or the pid now belongs to another process.
 */
export function signalProcess(id: ProcessId, signal: NodeJS.Signals | 0): boolean {
  if (!stillRunning(id)) return false;
  try {
    process.kill(id.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** A running process's real uid and start time (ms since the epoch, to the kernel's tick; and as recorded in a ProcessId), from /proc. */
export function processInfo(pid: number): { uid: number; startedAtMs: number; id: ProcessId } | undefined {
  try {
    const uid = Number(/^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
    const stat = readProcStat(pid);
    return stat && { uid, startedAtMs: startedAtMs(stat), id: { pid, startTicks: stat.startTicks } };
  } catch {
    return undefined;
  }
}
