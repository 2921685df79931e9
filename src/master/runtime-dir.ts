import fs from 'node:fs';
import path from 'node:path';
import { mode, openToOthers, STICKY, UnsafeFolderError, walk } from '../system/trusted-path';

// The runtime folder holds the control socket and the pidfile: whoever can replace what is
// in it can make a client signal any process, or make baton write through a symlink. So it
// is baton's own (created here, or checked), and so is every folder on the way to it.

/**
 * Makes sure `dir` is a folder only this user (or root) controls: creates what is missing
 * (the last folder `leafMode`, those on the way 0755, as systemd's RuntimeDirectory= does),
 * or checks what exists. With `ownLeaf`, the folder itself must be this user's (root's will
 * not do for a non-root master) and not a symlink. Throws UnsafeFolderError naming the path otherwise.
 */
export function prepareFolder(dir: string, opts: { leafMode: number; ownLeaf: boolean }): void {
  const uid = process.geteuid?.() ?? 0;
  let { real, missing, st } = walk(dir, uid, !opts.ownLeaf);
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

/** The runtime folder of a master: created 0700, or an existing one (systemd's, an operator's) checked. */
export function prepareRuntimeDir(dir: string): void {
  try {
    prepareFolder(dir, { leafMode: 0o700, ownLeaf: true });
  } catch (e) {
    throw e instanceof UnsafeFolderError ? new UnsafeFolderError(`refusing the runtime folder ${dir}: ${e.message}`) : e;
  }
}

/**
 * A client's view: null when `dir` does not exist, else the uid whose master it is. Folders
 * on the way must be root's or this user's; the folder itself this user's, root's, or —
 * when its parent is not sticky, so only root or this user could have put it there —
 * anyone's (systemd's RuntimeDirectory= for a DynamicUser=, seen by root).
 */
export function runtimeDirOwner(dir: string): number | null {
  const uid = process.geteuid?.() ?? 0;
  let parent: { real: string; missing: string[]; st: fs.Stats };
  try {
    parent = walk(path.dirname(path.resolve(dir)), uid, true);
  } catch (e) {
    throw new UnsafeFolderError(`not trusting the runtime folder ${dir}: ${(e as Error).message}`);
  }
  if (parent.missing.length) return null;
  const leaf = path.join(parent.real, path.basename(path.resolve(dir)));
  let st: fs.Stats;
  try {
    st = fs.lstatSync(leaf);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UnsafeFolderError(`not trusting the runtime folder ${dir}: cannot inspect it: ${(e as Error).message}`);
  }
  const refuse = (why: string) => new UnsafeFolderError(`not trusting the runtime folder ${dir}: ${why}`);
  if (st.isSymbolicLink()) throw refuse('it is a symlink');
  if (!st.isDirectory()) throw refuse('it is not a folder');
  if (openToOthers(st)) throw refuse(`it is writable by group or others (mode ${mode(st)})`);
  if (st.uid !== uid && st.uid !== 0 && parent.st.mode & STICKY) {
    throw refuse(`it is owned by uid ${st.uid} in a folder anyone can write to (${parent.real})`);
  }
  return st.uid;
}

/** The folder of a pidfile configured outside the runtime folder: made if missing (0755), else checked like any folder on the way. */
export function preparePidfileFolder(dir: string): void {
  try {
    prepareFolder(dir, { leafMode: 0o755, ownLeaf: false });
  } catch (e) {
    throw e instanceof UnsafeFolderError ? new UnsafeFolderError(`refusing the pidfile's folder ${dir}: ${e.message}`) : e;
  }
}
