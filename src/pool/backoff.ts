/** A worker that served this long before dying is not crash-looping: its next restart is immediate. */
export const STABLE_AFTER_MS = 10_000;
const FIRST_DELAY_MS = 100;
export const MAX_DELAY_MS = 30_000;

/**
 * Delay before restarting a slot after its `crashes`-th crash in a row: 0 for the first,
 * then 100 ms doubling up to 30 s, so a crash loop costs little CPU and log space while a
 * one-off crash is repaired at once.
 */
export function restartDelayMs(crashes: number): number {
  if (crashes <= 1) return 0;
  return Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (crashes - 2));
}
