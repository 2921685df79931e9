import type { Config } from './types';
import { workerArgv, workerEnv } from './worker-command';
import { signalGuardEnv } from '../contract/signal-guard';
import { native } from '../native';

/** Linux's limit on one argv or environment string, its NUL included (MAX_ARG_STRLEN, 32 pages). */
export const MAX_ARG_STRLEN = 131072;
/** execve()'s ceiling whatever the stack limit: 3/4 of _STK_LIM (8 MiB), see fs/exec.c. */
const KERNEL_CAP = 6 * 1024 * 1024;
/** Linux's floor (ARG_MAX in linux/limits.h), whatever the stack limit. */
const KERNEL_FLOOR = 131072;

/**
 * How many bytes of strings and pointers execve() takes: sysconf(_SC_ARG_MAX), a quarter of
 * the stack limit (ulimit -s) that the workers inherit from baton, within the kernel's bounds.
 */
export function argMax(): number {
  const v = native.argMax();
  if (!Number.isFinite(v) || v <= 0) return 2 * 1024 * 1024; // 8 MiB stack, the usual
  return Math.max(KERNEL_FLOOR, Math.min(v, KERNEL_CAP));
}

const bytes = (s: string) => Buffer.byteLength(s, 'utf8') + 1;
const DIGITS = '9'.repeat(10);

/**
 * Whether a worker of `cfg` can be exec'd at all: execve() fails with E2BIG when one string
 * is longer than MAX_ARG_STRLEN, or when argv and the environment (strings and pointers)
 * exceed ARG_MAX. Counts baton's own environment (`baseEnv`, which workers inherit), the
 * user's HOME/USER/LOGNAME/SHELL, workers.env, the shim's argv, and the most baton adds
 * (the signal guard among it).
 */
export function execProblems(cfg: Config, baseEnv: NodeJS.ProcessEnv, limit = argMax()): string[] {
  const wc = cfg.workers;
  const out: string[] = [];
  wc.command.forEach((a, i) => {
    if (bytes(a) > MAX_ARG_STRLEN) out.push(`/workers/command/${i}: ${bytes(a) - 1} bytes; one argument may be at most ${MAX_ARG_STRLEN - 1} (MAX_ARG_STRLEN: execve() fails with E2BIG)`);
  });
  for (const [k, v] of Object.entries(wc.env)) {
    const n = bytes(`${k}=${v}`);
    if (n > MAX_ARG_STRLEN) out.push(`/workers/env/${k}: ${n - 1} bytes as NAME=value; one variable may be at most ${MAX_ARG_STRLEN - 1} (MAX_ARG_STRLEN: execve() fails with E2BIG)`);
  }
  if (out.length) return out;
  const names = cfg.listeners ? cfg.listeners.map((l) => l.name).join(':') : 'x'.repeat(1024);
  const env = workerEnv(baseEnv, wc, {
    NOTIFY_SOCKET: 'x'.repeat(108),
    BATON_WORKER_ID: DIGITS,
    BATON_GENERATION: DIGITS,
    LISTEN_FDS: DIGITS,
    LISTEN_FDNAMES: names,
    LISTEN_PID: DIGITS,
    WATCHDOG_USEC: String(86400000 * 1000),
    WATCHDOG_PID: DIGITS,
  });
  Object.assign(env, signalGuardEnv(env));
  const argv = workerArgv(wc, true);
  const envStrings = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  const size = (xs: string[]) => xs.reduce((n, s) => n + bytes(s), 0);
  const total = bytes(argv[0]) + size(argv) + size(envStrings) + 8 * (argv.length + envStrings.length + 2);
  if (total > limit) {
    const own = size(Object.entries(baseEnv).map(([k, v]) => `${k}=${v}`));
    const extra = size(Object.entries(wc.env).map(([k, v]) => `${k}=${v}`));
    const key = extra >= size(wc.command) ? '/workers/env' : '/workers/command';
    out.push(
      `${key}: a worker's command line and environment come to about ${total} bytes ` +
        `(baton's own environment ${own}, workers.env ${extra}, workers.command ${size(wc.command)}), ` +
        `more than execve() takes (ARG_MAX ${limit}, a quarter of the stack limit): it would fail with E2BIG`,
    );
  }
  return out;
}
