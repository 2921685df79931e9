import fs from 'node:fs';
import path from 'node:path';
import { mode, openToOthers, prepareFolder, STICKY, UnsafeFolderError, walk } from './folders';

// The runtime folder holds the control socket and the pidfile: whoever can replace what is
// in it can make a client signal any process, or make baton write through a symlink. So it
// is baton's own (created here, or checked), and so is every folder on the way to it.

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
