import type { WorkerIdentity, WorkersConfig } from './types';
import { execSettingListenPid, LISTEN_ENV, listenFdsEnv } from '../contract/listen-fds';
import { IGNORE_MASTER_SIGNALS_SH } from '../contract/master-signals';
import { loadableByAnyone, signalGuardEnv } from '../contract/signal-guard';
import { signalGuardFile } from '../native';
import { WATCHDOG_ENV, watchdogEnv } from '../contract/watchdog';
import { adapterEnv, adapterFile, adaptsNode, ENV_ADAPT_OWNER } from '../contract/node-adapter';

/**
 * Runs the worker's program through sh for two things Node's spawn cannot do:
 * - LISTEN_PID and WATCHDOG_PID must be the worker's own pid, known only after fork (see
 *   execSettingListenPid).
 * - libuv resets every signal to its default in the child, so the SIG_IGN for the master's
 *   signals (USR2/HUP/WINCH, which `systemctl kill` sends to every process of the unit) is
 *   set here and survives exec for programs that do not change it (Node does: the signal
 *   guard, preloaded, covers it; see workerCommand).
 */

/**
 * The program spawn() starts and its argv (argv[0] included). With workers.user, util-linux
 * setpriv switches user first. Not Node's spawn({ uid, gid }): libuv then calls
 * setgroups(0, NULL) and the worker loses the user's supplementary groups; setpriv
 * --init-groups calls initgroups() as systemd's User= does, through NSS at exec time. It
 * execs in place, so the pid (LISTEN_PID, the process group) stays the worker's.
 */
export function workerArgv(wc: WorkersConfig, withSockets: boolean, gated = false): string[] {
  const [cmd, ...args] = wc.command;
  const pidVars = wc.watchdogMs > 0 ? ['WATCHDOG_PID'] : [];
  const first = IGNORE_MASTER_SIGNALS_SH + (gated ? GATE_SH : '');
  const sh = ['/bin/sh', '-c', execSettingListenPid(withSockets, first, pidVars), cmd, ...args];
  const u = wc.user;
  // no setpriv: a non-root master's workers.user can only be its own user (see config/identity.ts)
  if (!u?.setpriv) return sh;
  return [u.setpriv, `--reuid=${u.uid}`, `--regid=${u.gid}`, '--init-groups', '--', ...sh];
}

/** What the master writes to a gated worker's stdin to let its program start. */
export const GATE_OPEN = 'go\n';

/**
 * The start gate, for the workers of a successor not yet confirmed: its predecessor stops
 * them if it dies unconfirmed, so each must be known to the predecessor before its program
 * runs. spawn() returns after the fork; a SIGKILL between that and the report left a worker
 * serving that nobody knew of. So sh waits for GATE_OPEN on stdin (a pipe from the master,
 * written once the predecessor has been told); at EOF (the master died first) it exits 75
 * without running the program. Then stdin is /dev/null again, as for any worker.
 */
const GATE_SH = `IFS= read -r gate && [ "$gate" = go ] || exit 75; exec </dev/null; `;

/** HOME, USER, LOGNAME and SHELL of the workers' user, as systemd's User= sets them. */
export function identityEnv(u: WorkerIdentity | undefined): Record<string, string> {
  return u ? { HOME: u.home, USER: u.name, LOGNAME: u.name, SHELL: u.shell } : {};
}

/** Only baton sets these: a stale or hand-written one would name the wrong process or period. */
const BATONS_OWN: readonly string[] = [...LISTEN_ENV, ...WATCHDOG_ENV, ENV_ADAPT_OWNER];

/**
 * A worker's environment: baton's own, the user's, workers.env (none of them supplying
 * LISTEN_* or WATCHDOG_*), then what baton adds (LISTEN_FDS and LISTEN_FDNAMES from
 * listenFdsEnv, WATCHDOG_USEC among them).
 */
export function workerEnv(base: NodeJS.ProcessEnv, wc: WorkersConfig, added: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...base, ...identityEnv(wc.user), ...wc.env })) {
    if (v !== undefined && !BATONS_OWN.includes(k)) env[k] = v;
  }
  return Object.assign(env, added);
}

/**
 * What a worker is started with, given the sockets it gets at fd 3 onwards (`fds`, named
 * `names`): the argv (workerArgv) and the environment (workerEnv, with `added`, LISTEN_* and
 * WATCHDOG_USEC).
 */
export function workerCommand(
  wc: WorkersConfig,
  base: NodeJS.ProcessEnv,
  sockets: { fds: readonly number[]; names: readonly string[] },
  added: Record<string, string>,
  gated = false,
): { argv: string[]; env: Record<string, string> } {
  const env = workerEnv(base, wc, { ...added, ...listenFdsEnv(sockets.fds, sockets.names), ...watchdogEnv(wc.watchdogMs) });
  return { argv: workerArgv(wc, sockets.fds.length > 0, gated), env: Object.assign(env, workerGuard(wc, env), workerAdapter(wc, env)) };
}

/** Whether the workers get the Node adapter (workers.adapt); like the guard, for another user only if it can read it. */
export function adapted(wc: WorkersConfig): boolean {
  return !!adapterFile && adaptsNode(wc.adapt, wc.command) && !(wc.user && !loadableByAnyone(adapterFile));
}

function workerAdapter(wc: WorkersConfig, env: NodeJS.ProcessEnv): Record<string, string> {
  return adapterFile && adapted(wc) ? adapterEnv(env, adapterFile) : {};
}

/** The signal guard; a worker that runs as another user gets it only if any user can load it. */
function workerGuard(wc: WorkersConfig, env: NodeJS.ProcessEnv): Record<string, string> {
  if (wc.user && signalGuardFile && !loadableByAnyone(signalGuardFile)) return {};
  return signalGuardEnv(env);
}
