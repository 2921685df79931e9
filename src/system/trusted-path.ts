import fs from 'node:fs';
import path from 'node:path';
import { STICKY, UnsafeFolderError, walk } from './folders';

export { UnsafeFolderError };

// Paths that baton, often root, writes through: a folder that another user can write to lets
// them swap what is in it (a symlink to /etc/shadow, a hard link, a FIFO) between a check and
// the open. Trusted are root and the user baton runs as (its euid).

const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = fs.constants;

function kind(st: fs.Stats): string {
  if (st.isSymbolicLink()) return 'a symlink';
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/** Why a file in a checked folder is not one to append to, or null. */
function fileProblem(st: fs.Stats, uid: number, inSticky: boolean): string | null {
  if (!st.isFile()) return `it is ${kind(st)}, not a regular file`;
  // a hard link planted in the folder is a name of a file elsewhere (/etc/shadow): root's writes would go there
  if (st.nlink !== 1) return `it has ${st.nlink} hard links (another name of the same file could be any file on this file system)`;
  if (st.uid !== 0 && st.uid !== uid) return `it is owned by uid ${st.uid}, not by uid ${uid} or root`;
  if (inSticky && st.uid !== uid) return `it is owned by uid ${st.uid} in a folder anyone can write to`;
  return null;
}

export class UnsafeFileError extends Error {
  override name = 'UnsafeFileError';
}

/** The real path of `file` in its folder, the folder checked as walk() does; throws UnsafeFolderError. */
function place(file: string, uid: number): { real: string; sticky: boolean } {
  const dir = path.dirname(path.resolve(file));
  const { real, missing, st } = walk(dir, uid, true);
  if (missing.length) throw new UnsafeFolderError(`its folder '${dir}' is not an existing folder`);
  return { real: path.join(real, path.basename(file)), sticky: (st.mode & STICKY) !== 0 };
}

/**
 * Why `file` may not be appended to by this user, or null; opens and creates nothing (`baton
 * check`, a reload's config). The folder: as walk() checks it; the file, when it exists: a
 * regular file, not a symlink, one link, root's or this user's (this user's in a sticky folder).
 */
export function appendFileProblem(file: string): string | null {
  const uid = process.geteuid?.() ?? 0;
  try {
    const { real, sticky } = place(file, uid);
    return fileProblem(fs.lstatSync(real), uid, sticky);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return (e as Error).message;
  }
}

/**
 * Opens `file` for appending as appendFileProblem() would accept it, checked again on the fd
 * (fstat) so that what was swapped in since is refused, never written: O_NOFOLLOW (a symlink
 * is ELOOP, also a dangling one O_CREAT would otherwise create the target of), O_NONBLOCK (a
 * FIFO swapped in cannot block the open), O_NOCTTY; libuv adds O_CLOEXEC. A refusal throws
 * UnsafeFolderError or UnsafeFileError; a failed open its errno error.
 */
export function openAppendFile(file: string, createMode: number): number {
  const uid = process.geteuid?.() ?? 0;
  const { real, sticky } = place(file, uid);
  let before: fs.Stats | undefined;
  try {
    before = fs.lstatSync(real);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  // not opened at all: opening a device can do something by itself (a tape rewinds)
  const early = before && fileProblem(before, uid, sticky);
  if (early) throw new UnsafeFileError(early);
  let fd: number;
  try {
    fd = fs.openSync(real, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, createMode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new UnsafeFileError('it is a symlink, not a regular file');
    throw e;
  }
  const why = fileProblem(fs.fstatSync(fd), uid, sticky);
  if (why) {
    fs.closeSync(fd);
    throw new UnsafeFileError(why);
  }
  return fd;
}
