import type { Clock, Timer } from '../system/clock';

/** setTimeout's longest wait (2³¹−1 ms, 24.8 days): a longer period is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One worker's watchdog, as systemd's WatchdogSec= for a service: armed once the worker is
 * ready, pushed back by each WATCHDOG=1, `onHang` called when a whole period passes without
 * one. A period of 0 is off. One timer runs at a time: a ping only moves the deadline, and the
 * timer, when it fires early, waits for the rest.
 */
export class Watchdog {
  private armed = false;
  private deadline = 0;
  private timer?: Timer;

  constructor(
    private readonly clock: Clock,
    /** The period in ms; 0: off. */
    public periodMs: number,
    private readonly onHang: () => void,
  ) {}

  /** The worker is ready: from now on it must ping. */
  arm(): void {
    this.armed = true;
    this.restart();
  }

  /** WATCHDOG=1. Before the worker is ready it changes nothing (readyTimeoutMs watches the start). */
  ping(): void {
    if (this.armed && this.periodMs > 0) this.deadline = this.clock.now() + this.periodMs;
  }

  /** WATCHDOG_USEC=: a new period (0: off), counted from now, as systemd does. */
  setPeriod(ms: number): void {
    this.periodMs = ms;
    if (this.armed) this.restart();
  }

  /** The worker is stopping or gone: its stop deadline takes over. */
  disarm(): void {
    this.armed = false;
    this.timer?.cancel();
    this.timer = undefined;
  }

  private restart(): void {
    this.timer?.cancel();
    this.timer = undefined;
    if (this.periodMs <= 0) return;
    this.deadline = this.clock.now() + this.periodMs;
    this.wait();
  }

  private wait(): void {
    const now = this.clock.now();
    const ms = Math.min(this.deadline - now, MAX_TIMER_MS);
    this.timer = this.clock.after(ms, () => {
      this.timer = undefined;
      if (!this.armed) return;
      // Fired late by more than half a period: the master itself was not running (stopped,
      // or its loop held), so the worker's pings of that time wait unread in the notify
      // socket's queue, or in the worker's outbox while that queue was full. Its silence
      // proves nothing: a full period from now, counted as heard.
      if (this.clock.now() - (now + ms) > this.periodMs / 2) this.deadline = this.clock.now() + this.periodMs;
      if (this.clock.now() < this.deadline) return this.wait();
      this.armed = false;
      this.onHang();
    });
  }
}
