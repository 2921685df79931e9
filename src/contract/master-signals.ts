// The master's own signals. `systemctl kill` sends them to every process of the unit, so every
// worker ignores them: the master's shim sets SIG_IGN before exec, and baton/worker ignores
// them again at load (Node resets an inherited SIG_IGN at start-up).

/** The signals workers ignore: a stopSignal among them would never stop one. */
export const IGNORED_BY_WORKERS: readonly NodeJS.Signals[] = ['SIGUSR2', 'SIGHUP', 'SIGWINCH'];

/**
 * Whether a process died of one of them: reached by a signal burst such as `systemctl kill`'s
 * before it could ignore them (a process of baton's that is started again once, then).
 */
export const killedByMasterSignal = (signal: NodeJS.Signals | null | undefined): boolean => !!signal && IGNORED_BY_WORKERS.includes(signal);

/** sh that sets SIG_IGN for them (kept through exec): a worker's shim, a successor's double fork. */
export const IGNORE_MASTER_SIGNALS_SH = `trap "" ${IGNORED_BY_WORKERS.map((s) => s.slice(3)).join(' ')}; `;
