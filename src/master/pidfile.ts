import fs from 'node:fs';
import path from 'node:path';

/** Writes the pidfile atomically (a reader never sees it empty or half-written). */
export function writePidfile(file: string, pid = process.pid): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.${pid}.tmp`;
  fs.writeFileSync(tmp, `${pid}\n`, { mode: 0o644 });
  fs.renameSync(tmp, file);
}

export function readPidfile(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/** Removes the pidfile if it still names `pid` (a successor may have written its own). */
export function removePidfile(file: string, pid = process.pid): void {
  if (readPidfile(file) === pid) fs.rmSync(file, { force: true });
}

/** True while `pid` runs. A zombie (exited, not yet reaped by its parent) counts as gone. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}
