// What the master counts for the metrics (metrics/families.ts) since it started: cheap enough to
// keep always (a few numbers), so the endpoint shows everything from the start whenever it is on.

/** A cumulative histogram: counts per upper bound (seconds), their sum, and how many. */
export class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    this.bounds.forEach((b, i) => seconds <= b && this.counts[i]++);
  }
}

/** A reload's or an upgrade's outcome. */
export type Result = 'ok' | 'failed' | 'reverted';

/** Seconds: a reload or an upgrade takes the workers' start-up, a soak on top. */
const DURATION_BOUNDS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export class Counters {
  readonly reloads: Record<Result, number> = { ok: 0, failed: 0, reverted: 0 };
  readonly upgrades: Record<Result, number> = { ok: 0, failed: 0, reverted: 0 };
  readonly reloadSeconds = new Histogram(DURATION_BOUNDS);
  readonly upgradeSeconds = new Histogram(DURATION_BOUNDS);
  /** Worker exits by why (contract/control.ts ExitWhy). */
  readonly workerExits = new Map<string, number>();

  reload(result: Result, ms: number): void {
    this.reloads[result]++;
    this.reloadSeconds.observe(ms / 1000);
  }

  upgrade(result: Result, ms: number): void {
    this.upgrades[result]++;
    this.upgradeSeconds.observe(ms / 1000);
  }

  exited(why: string): void {
    this.workerExits.set(why, (this.workerExits.get(why) ?? 0) + 1);
  }
}
