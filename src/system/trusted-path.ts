import fs from 'node:fs';
import path from 'node:path';

// Paths that baton, often root, writes through: a folder that another user can write to lets
// them swap what is in it (a symlink to /etc/shadow, a hard link, a FIFO) between a check and
// the open. Trusted are root and the user baton runs as (its euid).

export class UnsafeFolderError extends Error {
  override name = 'UnsafeFolderError';
}

const GROUP_OTHER_WRITE = 0o022;
export const STICKY = 0o1000;
const MAX_SYMLINKS = 40;

export const mode = (st: fs.Stats) => `0${(st.mode & 0o7777).toString(8)}`;

/** Others may add entries to it: only a sticky folder (/tmp) keeps them from replacing ours. */
export const openToOthers = (st: fs.Stats) => (st.mode & GROUP_OTHER_WRITE) !== 0 && (st.mode & STICKY) === 0;

/**
 * Follows `dir` one component at a time as the kernel will: every folder on the way must be
 * owned by root or `uid` and not writable by group/others unless sticky; a symlink is
 * followed only when root or `uid` owns it (the last component only if `finalSymlinkOk`). Returns the real path of the deepest existing
 * folder, the components still missing and that folder's stat.
 */
export function walk(dir: string, uid: number, finalSymlinkOk: boolean): { real: string; missing: string[]; st: fs.Stats } {
  const todo = path.resolve(dir).split('/').filter(Boolean);
  let cur = '/';
  let st = fs.lstatSync(cur);
  let hops = 0;
  const trusted = (u: number) => u === 0 || u === uid;
  while (todo.length) {
    const name = todo.shift()!;
    if (name === '.') continue;
    const next = name === '..' ? path.dirname(cur) : path.join(cur, name);
    let s: fs.Stats;
    try {
      s = fs.lstatSync(next);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { real: cur, missing: [name, ...todo], st };
      throw new UnsafeFolderError(`cannot inspect ${next}: ${(e as Error).message}`);
    }
    if (s.isSymbolicLink()) {
      if (todo.length === 0 && !finalSymlinkOk) throw new UnsafeFolderError(`${next} is a symlink, not a folder`);
      if (!trusted(s.uid)) throw new UnsafeFolderError(`${next} is a symlink owned by uid ${s.uid}, not by uid ${uid} or root`);
      if (++hops > MAX_SYMLINKS) throw new UnsafeFolderError(`${dir}: too many levels of symlinks`);
      const target = fs.readlinkSync(next);
      todo.unshift(...target.split('/').filter(Boolean));
      if (target.startsWith('/')) cur = '/';
      continue;
    }
    if (!s.isDirectory()) throw new UnsafeFolderError(`${next} is not a folder`);
    if (!trusted(s.uid)) throw new UnsafeFolderError(`${next} is owned by uid ${s.uid}, not by uid ${uid} or root`);
    if (openToOthers(s)) throw new UnsafeFolderError(`${next} is writable by group or others (mode ${mode(s)})`);
    cur = next;
    st = s;
  }
  return { real: cur, missing: [], st };
}

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
