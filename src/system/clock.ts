/** Time as the master sees it: passed in, so the loop and the pool run in tests without waiting. */
export interface Timer {
  cancel(): void;
}

export interface Clock {
  now(): number;
  /** Calls `fn` once after `ms`; a cancelled timer never calls it. */
  after(ms: number, fn: () => void): Timer;
  /** Calls `fn` every `ms` until cancelled. */
  every(ms: number, fn: () => void): Timer;
}

export const realClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
  every(ms, fn) {
    const t = setInterval(fn, ms);
    // a repeating timer alone (a watchdog ping) never keeps the process alive
    t.unref();
    return { cancel: () => clearInterval(t) };
  },
};

/** `clock`, with every callback run by `run` (the master's queue) instead of directly. */
export function queuedClock(clock: Clock, run: (fn: () => void) => void): Clock {
  return {
    now: () => clock.now(),
    after: (ms, fn) => clock.after(ms, () => run(fn)),
    every: (ms, fn) => clock.every(ms, () => run(fn)),
  };
}
