// See node-preload.ts: this is what it loads in a process whose environment hands sockets over.
import net from 'node:net';
import { native } from '../native';
import { ENV_ADAPT_OWNER, withoutAdapter } from '../contract/node-adapter';
import { LISTEN_ENV, maxBacklog, offeredListenFds } from '../contract/listen-fds';
import { stderrLog } from '../contract/worker-stderr';
import { formatSockAddr } from '../system/socket-address';
import { attribute } from '../systemd/receiver';
import { Drain } from '../serve/drain';
import { notify, notifyIfAny, pingWatchdog, stopOnSignals } from '../serve/lifecycle';
import { hostFits } from './host';
import { isLauncher } from './launcher';

interface Socket {
  fd: number;
  name: string;
  family: string;
  /** The address it is bound to (inet, inet6). */
  address?: string;
  port?: number;
  path?: string;
  taken: boolean;
}

/** What a listen() call asks for. */
interface Wanted {
  port?: number;
  path?: string;
  host?: string;
}

const log = stderrLog(`[baton adapter ${process.pid}]`);

/**
 * Whether the sockets in LISTEN_FDS are this process's. As sd_listen_fds(3) has it, when
 * LISTEN_PID is its pid; else only when LISTEN_PID is a launcher's (npm start) that vouched
 * for its descendants in BATON_ADAPT_OWNER, and this process is one (as the master attributes
 * READY=1). A child of any other process is not given them, whatever it inherited.
 */
function given(env: NodeJS.ProcessEnv): boolean {
  const pid = env.LISTEN_PID;
  if (pid === String(process.pid)) return true;
  if (pid === undefined || !/^\d+$/.test(pid) || env[ENV_ADAPT_OWNER] !== pid) return false;
  return attribute(process.pid, new Set([Number(pid)])) !== undefined;
}

/** The inherited listening stream sockets (fds 3 onwards). */
function inheritedSockets(env: NodeJS.ProcessEnv): Socket[] {
  return offeredListenFds(env).map(({ fd, name, info }) => ({
    fd,
    name,
    family: info.family,
    address: info.address,
    port: info.port,
    path: info.path,
    taken: false,
  }));
}

/** The port or path (and host) a listen() call asks for; null for what is not ours to map (fd, handle, port 0). */
function requested(args: unknown[]): Wanted | null {
  const a = args[0];
  if (a !== null && typeof a === 'object') {
    const o = a as Record<string, unknown>;
    if (o.fd !== undefined || o.handle !== undefined || o._handle !== undefined) return null;
    if (typeof o.path === 'string') return { path: o.path };
    const port = Number(o.port ?? 0);
    return port > 0 ? { port, host: typeof o.host === 'string' ? o.host : undefined } : null;
  }
  if (typeof a === 'number' || (typeof a === 'string' && /^\d+$/.test(a))) {
    const port = Number(a);
    return port > 0 ? { port, host: typeof args[1] === 'string' ? args[1] : undefined } : null;
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

  const matches = (s: Socket, want: Wanted) =>
    (want.port !== undefined && s.port === want.port) || (want.path !== undefined && s.path === want.path);
  // the untaken socket with that port or path; else a taken one (the app listening again on a
  // port it has: Fastify on "localhost", 127.0.0.1 then ::1); else the next untaken one
  const choose = (want: Wanted, fits: (s: Socket) => boolean): Socket | undefined =>
    sockets.find((s) => !s.taken && fits(s) && matches(s, want)) ??
    sockets.find((s) => s.taken && fits(s) && matches(s, want)) ??
    sockets.find((s) => !s.taken && fits(s));

  const origListen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]): net.Server {
    const want = requested(args);
    const fit = want && choose(want, (s) => hostFits(want.host, s.address));
    if (!fit) {
      const unfit = want && choose(want, () => true);
      if (want && unfit) {
        const asked = `${net.isIPv6(want.host ?? '') ? `[${want.host}]` : want.host}:${want.port}`;
        log(
          `listen on ${asked} is left to the app: baton's socket ${unfit.name} is bound to ${formatSockAddr(unfit)}, ` +
            `not to the ${want.host} the app asked for: it would serve on addresses the app did not ask for. It binds as asked; that server is not ` +
            `baton's and sends no READY=1. To serve on baton's socket, listen with no host (or 0.0.0.0 or ::), or bind the ` +
            `listener to ${want.host}`,
        );
      }
      return (origListen as (...a: unknown[]) => net.Server).apply(this, args);
    }
    // the same socket through a second fd, so that both servers accept from its queue
    const sock = fit.taken ? { ...fit, fd: native.dupCloexec(fit.fd) } : fit;
    sock.taken = true;
    drain.add(this);
    if (!signalsInstalled) {
      signalsInstalled = true;
      installSignals();
      // the app serves through the adapter: what it starts from now on does not even see them
      for (const k of LISTEN_ENV) delete process.env[k];
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

/**
 * In a process given sockets (see given()), a launcher passes them on; any other takes them
 * for itself, before the app's code runs, and takes over listen() and the stop signals. What
 * it starts gets neither the fds nor the right to take them.
 */
export function adapt(env: NodeJS.ProcessEnv = process.env): void {
  const sockets = given(env) ? inheritedSockets(env) : [];
  if (sockets.length && isLauncher()) {
    // Node marks every inherited fd close-on-exec at start-up (uv_disable_stdio_inheritance):
    // undone, so that the app the launcher starts inherits them
    for (const s of sockets) native.setCloexec(s.fd, false);
    env[ENV_ADAPT_OWNER] = env.LISTEN_PID;
    return;
  }
  for (const s of sockets) native.setCloexec(s.fd, true);
  delete env[ENV_ADAPT_OWNER];
  const nodeOptions = withoutAdapter(env.NODE_OPTIONS, __filename);
  if (nodeOptions === undefined) delete env.NODE_OPTIONS;
  else env.NODE_OPTIONS = nodeOptions;
  if (!sockets.length) {
    // not this process's: nor its children's (sd_listen_fds(3) unsets them as well)
    for (const k of LISTEN_ENV) delete env[k];
    return;
  }
  // As if it had been started with them (under a launcher LISTEN_PID named the launcher): the
  // app's own sd_listen_fds(3) readers, baton/worker's serve() among them, find them; a process
  // it starts finds LISTEN_PID naming another process, which they refuse, and no fd.
  env.LISTEN_PID = String(process.pid);
  install(sockets);
}
