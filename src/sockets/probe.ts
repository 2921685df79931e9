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
