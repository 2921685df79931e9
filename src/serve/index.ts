// baton/worker: the one call a Node worker makes to serve on baton's (or systemd's) sockets.
//
//   const { serve } = require('baton/worker');
//   serve(http.createServer(handler));
//
// It listens on the inherited fds, sends READY=1, ignores the master's signals, and on
// SIGTERM/SIGINT/SIGQUIT stops without losing a request: the listeners close, each open
// keep-alive connection's next request is answered with `Connection: close`, a connection
// that sends nothing is closed only after it has been idle for `idleGraceMs`, and the
// process exits once every connection is gone.
import net from 'node:net';
import { maxBacklog, takeListenFds } from '../contract/listen-fds';
import { IGNORED_BY_WORKERS } from '../contract/master-signals';
import { stderrLog, stderrSafe } from '../contract/worker-stderr';
import { Drain } from './drain';
import { notify, notifyIfAny, pingWatchdog, stopOnSignals } from './lifecycle';

export { notify };

// USR2, HUP and WINCH are for the master (`systemctl kill` sends them to every process of the
// unit). Node resets an inherited SIG_IGN at start-up, so they are ignored here, as early as
// this module is loaded.
for (const sig of IGNORED_BY_WORKERS) process.on(sig, () => undefined);

export interface ServeOptions {
  /** Serve only the inherited sockets with these names (LISTEN_FDNAMES); default: all of them. */
  names?: string[];
  /** listen() backlog; default the kernel maximum, which is what systemd and baton bind with. */
  backlog?: number;
  /** On stop, an idle keep-alive connection is closed after this long without a request. Default 2000. */
  idleGraceMs?: number;
  /** When not started by baton or systemd (no LISTEN_FDS): listen here instead, for development. */
  fallback?: { port: number; host?: string };
  /** Called once when the stop begins (close database pools, etc.); the exit waits for it. */
  onStop?: () => void | Promise<void>;
  /** Log lines of the module; default: to stderr. */
  log?: (message: string) => void;
}

export interface Served {
  /** Names of the sockets served, one per fd. */
  names: string[];
  /** Starts the graceful stop (what the stop signals do); resolves when the process may exit. */
  stop(): Promise<void>;
}

export async function serve(server: net.Server, opts: ServeOptions = {}): Promise<Served> {
  // the app's own stderr too: a reader gone never kills the worker (contract/worker-stderr.ts)
  stderrSafe();
  const log = opts.log ?? stderrLog(`[worker ${process.pid}]`);
  const idleGraceMs = opts.idleGraceMs ?? 2000;
  const backlog = opts.backlog ?? maxBacklog();
  const drain = new Drain(idleGraceMs);
  drain.add(server);

  // ---- listen ----
  const inherited = takeListenFds().filter((f) => !opts.names || opts.names.includes(f.name));
  const listen = (s: net.Server, arg: { fd: number } | { port: number; host?: string }) =>
    new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      // listen({fd}) calls listen(2) again: without a backlog Node would shrink it to 511
      s.listen(arg, backlog, () => {
        s.off('error', reject);
        resolve();
      });
    });
  if (inherited.length === 0) {
    if (!opts.fallback) throw new Error('baton/worker: no sockets inherited (LISTEN_FDS is not set) and no fallback given');
    await listen(server, opts.fallback);
  } else {
    await listen(server, { fd: inherited[0].fd });
    for (const f of inherited.slice(1)) {
      // one application server, several sockets: the others hand their connections over
      const s = net.createServer({ pauseOnConnect: false }, (sock) => server.emit('connection', sock));
      drain.add(s);
      await listen(s, { fd: f.fd });
    }
  }
  const names = inherited.map((f) => f.name);

  // ---- stop ----
  let stopped: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    if (stopped) return stopped;
    notifyIfAny({ STOPPING: 1 });
    stopped = drain.stop().then(async () => {
      await opts.onStop?.();
    });
    return stopped;
  };
  stopOnSignals({ stop, stopping: () => stopped !== null, open: () => drain.open, log });
  pingWatchdog();

  try {
    notify({ READY: 1, STATUS: `serving ${names.join(',') || 'fallback'}` });
  } catch (e) {
    log(`READY=1 could not be sent: ${(e as Error).message}`);
  }
  return { names, stop };
}
