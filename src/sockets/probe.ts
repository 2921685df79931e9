import net from 'node:net';

/** True when something accepts connections on the unix socket at `path` (a live process, not a stale file). */
export function unixSocketAnswers(path: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const c = net.connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}
