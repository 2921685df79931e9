import type { Logger } from '../log/logger';
import type { Pool } from '../pool/pool';
import type { SystemdNotifier } from '../systemd/notifier';

export interface StopContext {
  log: Logger;
  systemd: Pick<SystemdNotifier, 'stopping' | 'extendFor'>;
  pool: Pick<Pool, 'stopAll' | 'all'>;
}

/**
 * The master's stop: graceful (each worker its stopSignal, then SIGKILL at stopTimeoutMs) or
 * fast (SIGKILL now); the master exits with `exitCode` once the pool is empty (`pool-empty`).
 * `handedOver`: a predecessor's stop after the hand-over, whose files are the successor's.
 */
export class Stop {
  private done = false;

  constructor(
    private readonly ctx: StopContext,
    private fast: boolean,
    why: string,
    readonly exitCode: number,
    readonly handedOver: boolean,
  ) {
    ctx.log.info(`${why}: ${fast ? 'fast stop (no drain)' : handedOver ? 'draining' : 'graceful stop'}`);
    ctx.systemd.stopping('stopping');
    ctx.pool.stopAll(fast);
    if (!fast) ctx.systemd.extendFor(Math.max(0, ...ctx.pool.all().map((g) => g.config.workers.stopTimeoutMs)));
  }

  /** Another stop request: a fast one turns a graceful stop fast; anything else changes nothing. */
  again(fast: boolean, source: string): void {
    if (!fast || this.fast) return;
    this.fast = true;
    this.ctx.log.warn(`${source}: fast stop, killing every worker now`);
    this.ctx.pool.stopAll(true);
  }

  /** True once: when no generation is left. A pool-empty queued before the stop began (a failed generation's) may come twice. */
  finished(): boolean {
    if (this.done || this.ctx.pool.all().length > 0) return false;
    this.done = true;
    return true;
  }
}
