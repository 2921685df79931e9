// What a Node worker does around its servers, for baton/worker's serve() and the Node adapter
// alike: sd_notify to the master, the stop signals, stopping when the master is gone, and the
// watchdog's pings. No side effect on load (the adapter loads it only where it takes sockets).
import { formatNotify } from '../systemd/notify-message';
import { NotifyOutbox } from '../systemd/outbox';
import { pingEveryMs, watchdogUsecFor } from '../contract/watchdog';

let outbox: NotifyOutbox | undefined;

/**
 * Sends an sd_notify message to NOTIFY_SOCKET (the master's); false when there is none. Never
 * waits for the master: while its queue is full (it is stalled, or a stranger filled it) the
 * message waits in the outbox and the worker goes on serving.
 */
export function notify(fields: Record<string, string | number>): boolean {
  const sock = process.env.NOTIFY_SOCKET;
  if (!sock) return false;
  if (outbox?.socket !== sock) outbox = new NotifyOutbox(sock);
  outbox.send(formatNotify(fields));
  return true;
}

/** notify(), for messages that may find the master gone (STOPPING=1, WATCHDOG=1): a failure is ignored. */
export function notifyIfAny(fields: Record<string, string | number>): void {
  try {
    notify(fields);
  } catch {
    /* the master may be gone */
  }
}

export interface StopOnSignals {
  /** Starts the graceful stop; resolves when the process may exit (it then exits 0). */
  stop: () => Promise<void>;
  /** Whether the stop has begun (by a signal, or by the application). */
  stopping: () => boolean;
  /** Connections open now, for the log. */
  open: () => number;
  log: (message: string) => void;
  /** Leave a signal to the application when it listens to it itself (the adapter). */
  appFirst?: boolean;
}

/**
 * SIGTERM, SIGINT and SIGQUIT start the graceful stop, then exit 0; so does the master's exit
 * (the parent pid changes) for a worker baton started, as gunicorn's workers do: nobody else
 * would stop it.
 */
export function stopOnSignals({ stop, stopping, open, log, appFirst = false }: StopOnSignals): void {
  let stoppedBy = '';
  const stopAndExit = (sig: string) => {
    // the application's own handler, if any, decides (ours is one of the listeners)
    if (appFirst && sig !== 'master exited' && process.listenerCount(sig) > 1) return;
    if (stopping()) {
      // ^C ^C exits at once; a repeated TERM or QUIT does not: under systemd (KillMode=control-group)
      // a worker gets systemd's SIGTERM and its stopSignal from the master, and must still drain
      if (sig === 'SIGINT' && stoppedBy === 'SIGINT') {
        log(`${sig} again: exiting now`);
        process.exit(0);
      }
      return log(`${sig}: already stopping (${open()} connection(s) open)`);
    }
    stoppedBy = sig;
    log(`${sig}: stopping gracefully (${open()} connection(s) open)`);
    void stop().then(() => process.exit(0));
  };
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const) process.on(sig, () => stopAndExit(sig));

  if (process.env.BATON_WORKER_ID !== undefined) {
    const ppid = process.ppid;
    const watch = setInterval(() => {
      if (process.ppid !== ppid) {
        clearInterval(watch);
        stopAndExit('master exited');
      }
    }, 1000);
    watch.unref();
  }
}

/**
 * The watchdog (baton's workers.watchdogMs, systemd's WatchdogSec=): WATCHDOG=1 from the event
 * loop at half the period, so a blocked loop goes silent and is caught. Kept up while draining
 * (the stop deadline bounds that anyway); unref'd: it never keeps the process alive.
 */
export function pingWatchdog(): void {
  const watchdogUsec = watchdogUsecFor(process.env);
  if (watchdogUsec > 0) setInterval(() => notifyIfAny({ WATCHDOG: 1 }), pingEveryMs(watchdogUsec)).unref();
}
