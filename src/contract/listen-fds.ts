import fs from 'node:fs';
import { native, type SockInfo } from '../native';
import { formatSockAddr } from '../system/socket-address';

// The fd-3 contract of sd_listen_fds(3), both halves: a process that is given listening
// sockets (a worker, a successor master) and one that receives them (the master from systemd
// or from its predecessor, baton/worker from the master).

/** sd_listen_fds(3): inherited sockets start at fd 3. */
export const SD_LISTEN_FDS_START = 3;

/** The variables that hand sockets over; baton's own environment and workers.env never supply them. */
export const LISTEN_ENV = ['LISTEN_FDS', 'LISTEN_FDNAMES', 'LISTEN_PID'] as const;

/**
 * LISTEN_FDS and LISTEN_FDNAMES for a process given `fds` (at fd 3 onwards, in this order)
 * named `names`; none when there are no sockets, as systemd does (sd_listen_fds() readers
 * refuse a LISTEN_PID or LISTEN_FDNAMES alone). LISTEN_PID comes from execSettingListenPid().
 */
export function listenFdsEnv(fds: readonly number[], names: readonly string[]): Record<string, string> {
  if (names.length !== fds.length) throw new Error(`${fds.length} socket(s) but ${names.length} name(s)`);
  return fds.length ? { LISTEN_FDS: String(fds.length), LISTEN_FDNAMES: names.join(':') } : {};
}

/**
 * A `/bin/sh -c` script that sets LISTEN_PID to its own pid and execs its arguments:
 * LISTEN_PID must be the pid of the process given the sockets, known only after fork, and
 * `exec` keeps the pid. Run as `['/bin/sh', '-c', script, program, ...args]`. Without sockets
 * it sets no LISTEN_PID (see listenFdsEnv). `first` is sh run before (a worker's trap);
 * `alsoPid` names other variables set to the pid the same way (a worker's WATCHDOG_PID).
 */
export function execSettingListenPid(withSockets: boolean, first = '', alsoPid: readonly string[] = []): string {
  const vars = [...(withSockets ? ['LISTEN_PID'] : []), ...alsoPid];
  return `${first}${vars.map((v) => `${v}=$$; export ${v}; `).join('')}exec "$0" "$@"`;
}

/** The kernel's largest backlog: what systemd asks for by default (listen() clamps to it). */
export function maxBacklog(): number {
  try {
    return Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim()) || 4096;
  } catch {
    return 4096;
  }
}

export interface InheritedFd {
  fd: number;
  /** From LISTEN_FDNAMES; "unknown" when unnamed, as sd_listen_fds_with_names(3) says. */
  name: string;
  info: SockInfo;
}

export class ListenFdsError extends Error {
  override name = 'ListenFdsError';
}

/**
 * Takes the sockets handed over in LISTEN_FDS/LISTEN_FDNAMES/LISTEN_PID (by systemd or by a
 * predecessor master) and removes the variables from `env`, as sd_listen_fds(unset=1) does, so
 * no child inherits stale values. Unlike sd_listen_fds, a LISTEN_FDS that is present but wrong
 * is an error rather than "no sockets": silently binding from config instead would hide it.
 */
export function takeListenFds(env: NodeJS.ProcessEnv = process.env, pid = process.pid): InheritedFd[] {
  const fdsText = env.LISTEN_FDS;
  const pidText = env.LISTEN_PID;
  const namesText = env.LISTEN_FDNAMES;
  for (const k of LISTEN_ENV) delete env[k];
  if (fdsText === undefined) {
    if (pidText !== undefined || namesText !== undefined) {
      throw new ListenFdsError(`LISTEN_PID or LISTEN_FDNAMES is set but LISTEN_FDS is not`);
    }
    return [];
  }
  if (!/^\d+$/.test(fdsText)) throw new ListenFdsError(`LISTEN_FDS='${fdsText}' is not a count of file descriptors`);
  const n = Number(fdsText);
  if (pidText === undefined) throw new ListenFdsError(`LISTEN_FDS=${n} is set but LISTEN_PID is not`);
  if (!/^\d+$/.test(pidText)) throw new ListenFdsError(`LISTEN_PID='${pidText}' is not a process id`);
  if (Number(pidText) !== pid) {
    throw new ListenFdsError(
      `LISTEN_PID=${pidText} names another process (this is pid ${pid}): the LISTEN_FDS=${n} sockets were meant for it`,
    );
  }
  if (n > 4096) throw new ListenFdsError(`LISTEN_FDS=${n} is implausibly large`);
  const names = namesText === undefined ? [] : namesText.split(':');
  if (namesText !== undefined && names.length !== n) {
    throw new ListenFdsError(`LISTEN_FDNAMES has ${names.length} name(s) (${namesText}) but LISTEN_FDS=${n}`);
  }
  const out: InheritedFd[] = [];
  for (const { fd, name } of namedFds(n, names)) {
    let info: SockInfo;
    try {
      info = native.sockInfo(fd);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'EBADF' ? 'is not open' : code === 'ENOTSOCK' ? 'is not a socket' : (e as Error).message;
      throw new ListenFdsError(`LISTEN_FDS=${n}: fd ${fd} (name '${name}') ${why}`);
    }
    const why = notAListener(info);
    if (why) throw new ListenFdsError(`LISTEN_FDS=${n}: fd ${fd} (name '${name}') ${why}`);
    // Our copy stays out of every program we start; workers get theirs by explicit mapping.
    native.setCloexec(fd, true);
    out.push({ fd, name, info });
  }
  return out;
}

/**
 * The lenient reader, as sd_listen_fds(3) itself is: of the fds LISTEN_FDS offers, the listening
 * stream sockets; the rest (not a socket, closed, not listening) are skipped, and a LISTEN_FDS
 * that is not a count offers nothing. It leaves `env` and the fds' flags as they are, and does
 * not read LISTEN_PID: whose the sockets are is the caller's to decide (the Node adapter's).
 */
export function offeredListenFds(env: NodeJS.ProcessEnv): InheritedFd[] {
  const n = Number(env.LISTEN_FDS);
  if (!Number.isInteger(n) || n <= 0) return [];
  const out: InheritedFd[] = [];
  for (const { fd, name } of namedFds(n, (env.LISTEN_FDNAMES ?? '').split(':'))) {
    try {
      const info = native.sockInfo(fd);
      if (info.type === 'stream' && info.listening) out.push({ fd, name, info });
    } catch {
      /* not a socket (closed by a process in between): not ours to take */
    }
  }
  return out;
}

/** The n fds from SD_LISTEN_FDS_START with their names; "unknown" where LISTEN_FDNAMES has none. */
function* namedFds(n: number, names: readonly string[]): Generator<{ fd: number; name: string }> {
  for (let i = 0; i < n; i++) yield { fd: SD_LISTEN_FDS_START + i, name: names[i] || 'unknown' };
}

/**
 * Why an inherited socket cannot be served as it is, or undefined when it can: only a
 * listening stream socket of a family a worker serves. baton never calls listen() on a socket
 * it did not bind: on an unbound one that would listen on every interface, on a random port.
 */
export function notAListener(info: SockInfo): string | undefined {
  if (info.family === 'other') return 'is not an inet, inet6 or unix socket';
  if (info.type !== 'stream') return `is a ${info.type === 'other' ? 'non-stream' : info.type} socket, not a stream socket`;
  if (info.listening) return undefined;
  if (info.connected) return `is a connected socket (${formatSockAddr(info)}), not a listening one (systemd's Accept=yes hands over connections; baton needs Accept=no)`;
  if (info.family === 'unix' ? !info.path : !info.port) return 'is not listening: it is not even bound';
  return `is bound to ${formatSockAddr(info)} but not listening`;
}

/**
 * Marks every fd from 3 up close-on-exec, at the very start of `baton run`: whatever baton
 * inherited beyond its sockets (a launcher's pipe, a shell's stray redirect) must not reach
 * the workers, which may run as another user. systemd closes such fds before exec; other
 * launchers do not. Nothing baton keeps is lost: the sockets and the upgrade channel are
 * handed to whoever needs them explicitly (spawn's stdio), never by inheritance.
 */
export function closeOnExecFrom3(): void {
  let fds: string[];
  try {
    fds = fs.readdirSync('/proc/self/fd');
  } catch {
    return; // no /proc: nothing to learn the fds from (the sockets are close-on-exec anyway)
  }
  for (const f of fds) {
    const fd = Number(f);
    if (fd < SD_LISTEN_FDS_START) continue;
    try {
      native.setCloexec(fd, true);
    } catch {
      /* the folder's own fd, closed by now */
    }
  }
}
