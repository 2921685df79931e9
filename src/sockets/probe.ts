import fs from 'node:fs';
import net from 'node:net';

/**
 * True when something listens on the unix socket at `path` (a live process, not a stale
 * file). A listener whose backlog is full refuses with EAGAIN: busy, not stale.
 */
export function unixSocketAnswers(path: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'EAGAIN'));
  });
}

/**
 * Makes way for a bind at `path`: nothing there, or a socket file nobody answers on (left by a
 * process that died), which is removed. 'live' when a process answers on it; 'not a socket' when
 * something else is there (both left alone). A stale file that cannot be removed throws.
 */
export async function clearStaleSocket(path: string): Promise<'clear' | 'live' | 'not a socket'> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch {
    return 'clear';
  }
  if (!st.isSocket()) return 'not a socket';
  if (await unixSocketAnswers(path)) return 'live';
  fs.unlinkSync(path);
  return 'clear';
}
