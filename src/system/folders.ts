import fs from 'node:fs';
import path from 'node:path';

// Folders baton creates or writes in, checked so that no path is followed that someone else
// could have put there: a symlink only when root or baton's user owns it, a folder baton
// creates checked to be its own, not a symlink, once made.

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
 * owned by root or `uid` and not writable by group/others unless sticky (unless
 * `anyFolder`: folders someone chose, whoever owns them); a symlink is followed only when
 * root or `uid` owns it (the last component only if `finalSymlinkOk`). Returns the real path
 * of the deepest existing folder, the components still missing and that folder's stat.
 */
export function walk(dir: string, uid: number, finalSymlinkOk: boolean, anyFolder = false): { real: string; missing: string[]; st: fs.Stats } {
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
    if (anyFolder) {
      cur = next;
      st = s;
      continue;
    }
    if (!trusted(s.uid)) throw new UnsafeFolderError(`${next} is owned by uid ${s.uid}, not by uid ${uid} or root`);
    if (openToOthers(s)) throw new UnsafeFolderError(`${next} is writable by group or others (mode ${mode(s)})`);
    cur = next;
    st = s;
  }
  return { real: cur, missing: [], st };
}

/**
 * Makes sure `dir` is a folder only this user (or root) controls: creates what is missing
 * (the last folder `leafMode`, those on the way 0755, as systemd's RuntimeDirectory= does),
 * or checks what exists. With `ownLeaf`, the folder itself must be this user's (root's will
 * not do for a non-root master) and not a symlink. With `anyFolder`, existing folders are
 * taken whoever owns them (an operator's choice), but a symlink on the way must still be
 * root's or this user's, and what is created must be a folder of this user's, not a symlink
 * someone put there meanwhile. Throws UnsafeFolderError naming the path otherwise.
 */
export function prepareFolder(dir: string, opts: { leafMode: number; ownLeaf: boolean; anyFolder?: boolean }): void {
  const uid = process.geteuid?.() ?? 0;
  let { real, missing, st } = walk(dir, uid, !opts.ownLeaf, opts.anyFolder);
  missing.forEach((name, i) => {
    const leaf = i === missing.length - 1;
    const next = path.join(real, name);
    let made = true;
    try {
      fs.mkdirSync(next, { mode: leaf ? opts.leafMode : 0o755 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new UnsafeFolderError(`cannot create ${next}: ${(e as Error).message}`);
      made = false; // made by someone else meanwhile: checked below like any other
    }
    const s = fs.lstatSync(next);
    if (!s.isDirectory()) throw new UnsafeFolderError(`${next} is not a folder`);
    if (s.uid !== uid && !(s.uid === 0 && !(leaf && opts.ownLeaf))) throw new UnsafeFolderError(`${next} is owned by uid ${s.uid}, not by uid ${uid}`);
    // the umask must not make a parent untraversable (systemd's units below it need 0755)
    if (made) fs.chmodSync(next, leaf ? opts.leafMode : 0o755);
    else if (openToOthers(s)) throw new UnsafeFolderError(`${next} is writable by group or others (mode ${mode(s)})`);
    real = next;
    st = fs.lstatSync(next);
  });
  if (opts.ownLeaf && st.uid !== uid) throw new UnsafeFolderError(`${real} is owned by uid ${st.uid}, not by uid ${uid}`);
}
