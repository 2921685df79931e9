import type { Clock, Timer } from '../system/clock';

/**
 * The log lines one worker's notifications may cause: `burst` at once, then `perSecond` (a
 * token bucket); the lines over that are counted and said in one line a second after the
 * first of them. A worker sending a bad WATCHDOG_USEC= in a loop wrote 179 MB to the log in
 * 2 s (issue 22).
 */
export class LineBudget {
  private tokens: number;
  private at: number;
  private suppressed = 0;
  private timer?: Timer;

  constructor(
    private readonly clock: Clock,
    /** Says how many lines were not written. */
    private readonly say: (suppressed: number) => void,
    private readonly perSecond = 5,
    private readonly burst = 20,
  ) {
    this.tokens = burst;
    this.at = clock.now();
  }

  /** The limit in words, for the line that says what was not written. */
  get limit(): string {
    return `more than ${this.burst} at once or ${this.perSecond} a second`;
  }

  /** Whether one more line may be written now; if not, it is counted. */
  take(): boolean {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.at) * this.perSecond) / 1000);
    this.at = now;
    if (this.tokens >= 1) {
      this.tokens--;
      return true;
    }
    if (this.suppressed++ === 0) this.timer = this.clock.after(1000, () => this.flush());
    return false;
  }

  /** Says now what was suppressed (the worker is gone). */
  flush(): void {
    this.timer?.cancel();
    this.timer = undefined;
    const n = this.suppressed;
    this.suppressed = 0;
    if (n) this.say(n);
  }
}
