import type { Clock, Timer } from './clock';

/**
 * One full garbage collection a second after workers exit (at most one a second): what keeps
 * the master's memory flat across reloads.
 *
 * A reload's garbage is small (a generation's records, its pipes' buffers, the control and
 * notify traffic), but V8 promotes it to the old space, and at a master's low allocation rate
 * its next full collection comes only after hundreds of reloads: measured (bench section 9),
 * RSS grew by about 1 MiB every 100 reloads until then, even in lite mode. () => voiding once the
 * old workers are gone keeps 1,000 reloads flat; a collection of the master's heap (about 6 MB)
 * takes about 5 ms, and an idle master never runs one.
 *
 * `gc` exists only when node runs with --expose-gc, as bin/baton and /usr/bin/baton start it;
 * without it this does nothing.
 */
export class Tidy {
  private timer: Timer | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly collect: (() => void) | undefined,
    private readonly quietMs = 1000,
  ) {}

  soon(): void {
    if (!this.collect || this.timer) return;
    this.timer = this.clock.after(this.quietMs, () => {
      this.timer = undefined;
      this.collect?.();
    });
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }
}
