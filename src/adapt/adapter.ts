// See node-preload.ts: this is what it loads once the process was given sockets.
import net from 'node:net';
import { native } from '../native';
import { ENV_ADAPT_OWNER } from '../contract/node-adapter';
import { maxBacklog, SD_LISTEN_FDS_START } from '../contract/listen-fds';
import { attribute } from '../systemd/receiver';
import { Drain } from '../serve/drain';
import { notify, notifyIfAny, pingWatchdog, stopOnSignals } from '../serve/lifecycle';

interface Socket {
  fd: number;
  name: string;
  port?: number;
  path?: string;
  taken: boolean;
}

const log = (m: string) => process.stderr.write(`[baton adapter ${process.pid}] ${m}\n`);

/** The inherited listening sockets this process may take; none when it was not given any. */
function inheritedSockets(env: NodeJS.ProcessEnv): Socket[] {
  const n = Number(env.LISTEN_FDS);
  if (!Number.isInteger(n) || n <= 0 || env.NODE_UNIQUE_ID !== undefined) return [];
  const own = env.LISTEN_PID === String(process.pid);
  const owner = Number(env[ENV_ADAPT_OWNER]);
  // a descendant of the process given the sockets, as the master's receiver attributes READY=1
  if (!own && !(owner > 1 && attribute(process.pid, new Set([owner])) === owner)) return [];
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
      setImmediate(() => {
        try {
          notify({ READY: 1, STATUS: `serving ${adopted.join(',')} (the app's listen on ${asked})` });
        } catch (e) {
          log(`READY=1 could not be sent: ${(e as Error).message}`);
        }
      });
    });
    const cb = args.find((a) => typeof a === 'function');
    // listen({fd}) calls listen(2) again: without a backlog Node would shrink it to 511
    // (Node takes the backlog of listen({fd}) from the arguments, not from the options)
    return (origListen as (...a: unknown[]) => net.Server).call(this, { fd: sock.fd }, backlog, ...(cb ? [cb] : []));
  };

  function installSignals(): void {
    const stop = () => {
      notifyIfAny({ STOPPING: 1 });
      return drain.stop();
    };
    stopOnSignals({ stop, stopping: () => drain.stopping, open: () => drain.open, log, appFirst: true });
    pingWatchdog();
  }
}

/** Takes over listen() and the stop signals when this process was given sockets. */
export function adapt(env: NodeJS.ProcessEnv = process.env): void {
  const sockets = inheritedSockets(env);
  if (sockets.length) install(sockets);
}
