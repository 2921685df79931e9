import type { WorkerIdentity, WorkersConfig } from '../config/types';

/**
 * Runs the worker's program through sh for two things Node's spawn cannot do:
 * - LISTEN_PID must be the worker's own pid, known only after fork; `exec` keeps the pid.
 * - libuv resets every signal to its default in the child, so the SIG_IGN for the master's
 *   signals (USR2/HUP/WINCH, which `systemctl kill` sends to every process of the unit) is
 *   set here and survives exec for programs that do not change it.
 * With no sockets there is no LISTEN_PID either: systemd sets none of LISTEN_FDS,
 * LISTEN_FDNAMES, LISTEN_PID then, and sd_listen_fds() readers refuse a LISTEN_PID alone.
 */
const SHIM_SOCKETS = 'trap "" USR2 HUP WINCH; LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"';
const SHIM_NO_SOCKETS = 'trap "" USR2 HUP WINCH; exec "$0" "$@"';

/** The signals the SHIM makes workers ignore: a stopSignal among them would never stop one. */
export const IGNORED_BY_WORKERS: readonly NodeJS.Signals[] = ['SIGUSR2', 'SIGHUP', 'SIGWINCH'];

/** The variables baton sets for a worker; baton's own environment and workers.env never supply them. */
export const SOCKET_ENV = ['LISTEN_FDS', 'LISTEN_FDNAMES', 'LISTEN_PID'] as const;

/**
 * The program spawn() starts and its argv (argv[0] included). With workers.user, util-linux
 * setpriv switches user first. Not Node's spawn({ uid, gid }): libuv then calls
 * setgroups(0, NULL) and the worker loses the user's supplementary groups; setpriv
 * --init-groups calls initgroups() as systemd's User= does, through NSS at exec time. It
 * execs in place, so the pid (LISTEN_PID, the process group) stays the worker's.
 */
export function workerArgv(wc: WorkersConfig, withSockets: boolean): string[] {
  const [cmd, ...args] = wc.command;
  const sh = ['/bin/sh', '-c', withSockets ? SHIM_SOCKETS : SHIM_NO_SOCKETS, cmd, ...args];
  const u = wc.user;
  // no setpriv: a non-root master's workers.user can only be its own user (see config/identity.ts)
  if (!u?.setpriv) return sh;
  return [u.setpriv, `--reuid=${u.uid}`, `--regid=${u.gid}`, '--init-groups', '--', ...sh];
}

/** HOME, USER, LOGNAME and SHELL of the workers' user, as systemd's User= sets them. */
export function identityEnv(u: WorkerIdentity | undefined): Record<string, string> {
  return u ? { HOME: u.home, USER: u.name, LOGNAME: u.name, SHELL: u.shell } : {};
}

/** A worker's environment: baton's own, the user's, workers.env, then what baton adds. */
export function workerEnv(base: NodeJS.ProcessEnv, wc: WorkersConfig, added: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...base, ...identityEnv(wc.user), ...wc.env })) {
    if (v !== undefined && !(SOCKET_ENV as readonly string[]).includes(k)) env[k] = v;
  }
  return Object.assign(env, added);
}
