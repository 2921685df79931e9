// The worker watchdog's contract, both halves (systemd's WatchdogSec= for each worker): what the
// master gives a worker (WATCHDOG_USEC, WATCHDOG_PID) and what a worker reads and sends back
// (sd_watchdog_enabled(3), sd_notify(3)).

/** The variables that ask a process for keep-alive pings: a worker gets them from baton only. */
export const WATCHDOG_ENV = ['WATCHDOG_USEC', 'WATCHDOG_PID'] as const;

/** WATCHDOG_USEC for a worker watched every `ms` (none when 0: off). WATCHDOG_PID is set by the shim, after fork. */
export function watchdogEnv(ms: number): Record<string, string> {
  return ms > 0 ? { WATCHDOG_USEC: String(ms * 1000) } : {};
}

/**
 * sd_watchdog_enabled(3): the period in µs within which process `pid` must send WATCHDOG=1,
 * or 0 when none is asked of it: WATCHDOG_USEC must be set and WATCHDOG_PID unset or `pid`.
 */
export function watchdogUsecFor(env: NodeJS.ProcessEnv, pid = process.pid): number {
  const usec = Number(env.WATCHDOG_USEC);
  const forPid = env.WATCHDOG_PID;
  return Number.isFinite(usec) && usec > 0 && (!forPid || Number(forPid) === pid) ? usec : 0;
}

/** setInterval's longest delay (2³¹−1 ms): Node turns a longer one into 1 ms. */
const MAX_INTERVAL_MS = 2 ** 31 - 1;

/** How often a watched process sends WATCHDOG=1: at half its period, as sd_watchdog_enabled(3) advises. */
export function pingEveryMs(usec: number): number {
  return Math.min(MAX_INTERVAL_MS, Math.max(1, Math.floor(usec / 2000)));
}

/** systemd's USEC_INFINITY (UINT64_MAX): a watchdog that never fires. */
const USEC_INFINITY = 2n ** 64n - 1n;

/**
 * A worker's `WATCHDOG_USEC=` message (sd_notify(3): a new period at run time), read as systemd
 * reads it: a decimal number of µs; 0 or USEC_INFINITY turn the watchdog off ('off'); anything
 * else ("infinity" included, which systemd does not parse either) is not a period (undefined).
 * Returns the period in whole ms, rounded up.
 */
export function parseWatchdogUsec(v: string): number | 'off' | undefined {
  if (!/^\d{1,20}$/.test(v)) return undefined;
  const usec = BigInt(v);
  if (usec > USEC_INFINITY) return undefined;
  if (usec === 0n || usec === USEC_INFINITY) return 'off';
  return Number((usec + 999n) / 1000n);
}
