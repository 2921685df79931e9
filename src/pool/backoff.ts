/** A worker that served this long before dying is not crash-looping: its next restart is immediate. */
export const STABLE_AFTER_MS = 10_000;
const FIRST_DELAY_MS = 100;
export const MAX_DELAY_MS = 30_000;
const FIRST_RECYCLE_DELAY_MS = 1_000;
export const MAX_RECYCLE_DELAY_MS = 300_000;

/** `first`, doubling with every step past 1, up to `max`. */
const doubling = (step: number, first: number, max: number) => Math.min(max, first * 2 ** (step - 1));

/**
 * Delay before restarting a slot after its `crashes`-th crash in a row: 0 for the first,
 * then 100 ms doubling up to 30 s, so a crash loop costs little CPU and log space while a
 * one-off crash is repaired at once.
 */
export function restartDelayMs(crashes: number): number {
  if (crashes <= 1) return 0;
  return doubling(crashes - 1, FIRST_DELAY_MS, MAX_DELAY_MS);
}

/**
 * Delay before a slot's next recycle after its `failures`-th failed one in a row (a
 * replacement that did not get ready, or one over workers.maxMemory from its start): 1 s
 * doubling up to 5 min. A limit no worker can meet recycles at that pace, not in a loop.
 */
export function recycleDelayMs(failures: number): number {
  return failures <= 0 ? 0 : doubling(failures, FIRST_RECYCLE_DELAY_MS, MAX_RECYCLE_DELAY_MS);
}
