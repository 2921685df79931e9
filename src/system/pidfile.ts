import fs from 'node:fs';

const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/** The temporary file writePidfile() renames into place: a dead writer's is removed by its predecessor. */
export const pidfileTmp = (file: string, pid = process.pid) => `${file}.${pid}.tmp`;

/**
 * Writes the pidfile atomically (a reader never sees it empty or half-written). The
 * temporary file is created O_EXCL|O_NOFOLLOW, so never through a file or symlink someone
 * put there, and the rename replaces whatever `file` was without following it. Nothing is
 * left behind when it fails.
 */
export function writePidfile(file: string, pid = process.pid): void {
  const tmp = pidfileTmp(file, pid);
  const create = () => fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
  let fd: number;
  try {
    try {
      fd = create();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // left by a killed process that had our pid: unlink removes a symlink, not its target
      fs.unlinkSync(tmp);
      fd = create();
    }
  } catch (e) {
    throw new Error(`cannot write the pidfile ${file}: ${(e as Error).message}`);
  }
  try {
    try {
      fs.writeSync(fd, `${pid}\n`);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new Error(`cannot write the pidfile ${file}: ${(e as Error).message}`);
  }
}

export interface PidfileInfo {
  pid: number;
  /** Owner and last change of the file, to tell a live master from a recycled pid. */
  uid: number;
  mtimeMs: number;
}

/** Reads a pidfile without following a symlink or blocking on a fifo; undefined unless a regular file names a pid. */
export function readPidfileInfo(file: string): PidfileInfo | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > 64) return undefined;
    const n = Number(fs.readFileSync(fd, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? { pid: n, uid: st.uid, mtimeMs: st.mtimeMs } : undefined;
  } catch {
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

export function readPidfile(file: string): number | undefined {
  return readPidfileInfo(file)?.pid;
}

/** Removes the pidfile if it still names `pid` (a successor may have written its own). */
export function removePidfile(file: string, pid = process.pid): void {
  if (readPidfile(file) === pid) fs.rmSync(file, { force: true });
}
