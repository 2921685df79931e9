// See node-preload.ts: this is what it loads once the process was given sockets.
import fs from 'node:fs';
import net from 'node:net';
import { native } from '../native';
import { ENV_ADAPT_OWNER } from '../contract/node-adapter';
import { maxBacklog, SD_LISTEN_FDS_START } from '../contract/listen-fds';
import { pingEveryMs, watchdogUsecFor } from '../contract/watchdog';
import { formatNotify } from '../systemd/notify-message';
import { Drain } from '../serve/drain';

interface Socket {
  fd: number;
  name: string;
  port?: number;
  path?: string;
  taken: boolean;
}

const log = (m: string) => process.stderr.write(`[baton adapter ${process.pid}] ${m}\n`);

/** Whether `pid` is an ancestor of this process (/proc/PID/stat's ppid, up the chain). */
function isAncestor(pid: number): boolean {
  let p = process.ppid;
  for (let i = 0; i < 32 && p > 1; i++) {
    if (p === pid) return true;
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      p = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return false;
    }
  }
  return false;
}

/** The inherited listening sockets this process may take; none when it was not given any. */
function inheritedSockets(env: NodeJS.ProcessEnv): Socket[] {
  const n = Number(env.LISTEN_FDS);
  if (!Number.isInteger(n) || n <= 0 || env.NODE_UNIQUE_ID !== undefined) return [];
  const own = env.LISTEN_PID === String(process.pid);
  const owner = Number(env[ENV_ADAPT_OWNER]);
  if (!own && !(owner > 1 && isAncestor(owner))) return [];
  if (own) env[ENV_ADAPT_OWNER] = String(process.pid);
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  const out: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const fd = SD_LISTEN_FDS_START + i;
    try {
      const info = native.sockInfo(fd);
      if (info.type !== 'stream' || !info.listening) continue;
      // Node marks every inherited fd close-on-exec at start-up (uv_disable_stdio_inheritance):
      // undone until this process listens, so that a launcher (npm start) passes them on
      native.setCloexec(fd, false);
      out.push({ fd, name: names[i] || 'unknown', port: info.port, path: info.path, taken: false });
    } catch {
      /* not a socket (closed by a process in between): not ours to take */
    }
  }
  return out;
}

/** The port or path a listen() call asks for; null for what is not ours to map (fd, handle, port 0). */
function requested(args: unknown[]): { port?: number; path?: string } | null {
  const a = args[0];
  if (a !== null && typeof a === 'object') {
    const o = a as Record<string, unknown>;
    if (o.fd !== undefined || o.handle !== undefined || o._handle !== undefined) return null;
    if (typeof o.path === 'string') return { path: o.path };
    const port = Number(o.port ?? 0);
    return port > 0 ? { port } : null;
  }
  if (typeof a === 'number' || (typeof a === 'string' && /^\d+$/.test(a))) {
    const port = Number(a);
    return port > 0 ? { port } : null;
  }
  if (typeof a === 'string') return { path: a };
  return null;
}

function notify(fields: Record<string, string | number>): void {
  const sock = process.env.NOTIFY_SOCKET;
  if (!sock) return;
  try {
    native.notifySend(sock, formatNotify(fields));
  } catch (e) {
    log(`sd_notify failed: ${(e as Error).message}`);
  }
}

function install(sockets: Socket[]): void {
  const firstTcp = sockets.find((s) => s.port !== undefined);
  if (process.env.PORT === undefined && firstTcp) process.env.PORT = String(firstTcp.port);

  const drain = new Drain(2000);
  const backlog = maxBacklog();
  const adopted: string[] = [];
  let readySent = false;
  let signalsInstalled = false;

  const matches = (s: Socket, want: { port?: number; path?: string }) =>
    (want.port !== undefined && s.port === want.port) || (want.path !== undefined && s.path === want.path);
  const choose = (want: { port?: number; path?: string }): Socket | undefined => {
    const exact = sockets.find((s) => !s.taken && matches(s, want));
    if (exact) return exact;
    // the app listening again on a port it has (Fastify on "localhost": 127.0.0.1, then ::1):
    // the same socket through a second fd, so that both servers accept from its queue
    const same = sockets.find((s) => s.taken && matches(s, want));
    if (same) return { ...same, fd: native.dupCloexec(same.fd) };
    return sockets.find((s) => !s.taken);
  };

  const origListen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]): net.Server {
    const want = requested(args);
    const sock = want && choose(want);
    if (!sock) return (origListen as (...a: unknown[]) => net.Server).apply(this, args);
    sock.taken = true;
    drain.add(this);
    if (!signalsInstalled) {
      signalsInstalled = true;
      installSignals();
      // the sockets are this process's now: not for the processes it starts (which would
      // inherit the fds and, through the environment, the right to take them)
      for (const k of ['LISTEN_FDS', 'LISTEN_FDNAMES', 'LISTEN_PID', ENV_ADAPT_OWNER]) delete process.env[k];
      for (const s of sockets) native.setCloexec(s.fd, true);
    }
    const asked = want.port !== undefined ? `port ${want.port}` : want.path;
    this.once('listening', () => {
      adopted.push(sock.name);
      if (readySent) return;
      readySent = true;
      // after the app's other listen() calls of the same tick
      setImmediate(() => notify({ READY: 1, STATUS: `serving ${adopted.join(',')} (the app's listen on ${asked})` }));
    });
    const cb = args.find((a) => typeof a === 'function');
    // listen({fd}) calls listen(2) again: without a backlog Node would shrink it to 511
    // (Node takes the backlog of listen({fd}) from the arguments, not from the options)
    return (origListen as (...a: unknown[]) => net.Server).call(this, { fd: sock.fd }, backlog, ...(cb ? [cb] : []));
  };

  function installSignals(): void {
    let stoppedBy = '';
    const stopAndExit = (sig: NodeJS.Signals | 'master exited') => {
      // the app's own handler, if any, decides (ours is one of the listeners)
      if (sig !== 'master exited' && process.listenerCount(sig) > 1) return;
      if (drain.stopping) {
        if (sig === 'SIGINT' && stoppedBy === 'SIGINT') process.exit(0);
        return;
      }
      stoppedBy = sig;
      log(`${sig}: stopping gracefully (${drain.open} connection(s) open)`);
      notify({ STOPPING: 1 });
      void drain.stop().then(() => process.exit(0));
    };
    for (const sig of ['SIGTERM', 'SIGQUIT', 'SIGINT'] as const) process.on(sig, () => stopAndExit(sig));

    // nobody will stop us once the master is gone (ppid changed): stop by ourselves
    if (process.env.BATON_WORKER_ID !== undefined) {
      const ppid = process.ppid;
      const watch = setInterval(() => {
        if (process.ppid === ppid) return;
        clearInterval(watch);
        stopAndExit('master exited');
      }, 1000);
      watch.unref();
    }
    const watchdogUsec = watchdogUsecFor(process.env);
    if (watchdogUsec > 0) setInterval(() => notify({ WATCHDOG: 1 }), pingEveryMs(watchdogUsec)).unref();
  }
}

/** Takes over listen() and the stop signals when this process was given sockets. */
export function adapt(env: NodeJS.ProcessEnv = process.env): void {
  const sockets = inheritedSockets(env);
  if (sockets.length) install(sockets);
}
