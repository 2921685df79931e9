import type { Config } from '../config/types';
import type { Listener } from '../sockets/listeners';
import type { NotifySender } from '../systemd/receiver';
import type { SlotExit } from './exit';
import { Generation, type GenerationContext } from './generation';

/**
 * Every generation the master runs: at most one serving (the master's "current"), one
 * starting during start-up or a reload, any number draining or failed on their way out. The
 * pool owns them; the master asks (start, drain, fail, resize) and hears back through
 * PoolEvents.
 */
export class Pool {
  private readonly generations: Generation[] = [];
  /** Watchdog kills of the generations already gone. */
  private pastWatchdogKills = 0;
  /** Each slot's last exit, whatever its generation (status shows it on the slot's next worker). */
  private readonly exits = new Map<number, SlotExit>();

  constructor(private readonly ctx: Omit<GenerationContext, 'gone' | 'exits'>) {}

  /** `slots`: how many of its slots start now (a rolling reload: none); all by default. */
  start(id: number, config: Config, listeners: Listener[], slots?: number): Generation {
    const g = new Generation(id, config, listeners, { ...this.ctx, gone: (x) => this.forget(x), exits: this.exits }, slots);
    this.generations.push(g);
    return g;
  }

  get(id: number | undefined): Generation | undefined {
    return this.generations.find((g) => g.id === id);
  }

  all(): readonly Generation[] {
    return this.generations;
  }

  /** Workers signalled by their watchdog since this master started, in every generation. */
  get watchdogKills(): number {
    return this.generations.reduce((n, g) => n + g.watchdogKills, this.pastWatchdogKills);
  }

  /** Whether `pid` is one of our workers (the notify receiver's filter). */
  has(pid: number): boolean {
    return this.generations.some((g) => g.byPid(pid) !== undefined);
  }

  notified(sender: NotifySender, fields: Map<string, string>): void {
    for (const g of this.generations) {
      const w = g.byPid(sender.worker);
      if (!w) continue;
      if (sender.truncated) g.workerLine(w, 'warn', `worker ${w.slot} (pid ${w.pid}) sent a notification longer than 4096 bytes: ignored, as systemd does`);
      else g.notified(w, fields);
      return;
    }
  }

  /**
   * At most `max` generations draining (reload.maxDraining): beyond it the oldest are stopped
   * now, SIGKILL. Long-lived connections (WebSockets, SSE) keep a generation draining until
   * stopTimeoutMs; reloads in quick succession would pile them up (HAProxy caps the same with
   * mworker-max-reloads).
   */
  capDraining(max: number): void {
    const draining = this.generations.filter((g) => g.state === 'draining');
    for (const g of draining.slice(0, Math.max(0, draining.length - max))) {
      this.ctx.log.warn(`generation ${g.id}: more than reload.maxDraining (${max}) generations are draining; its ${g.size} worker(s) are stopped now (SIGKILL), the oldest first`);
      g.drain(true);
    }
  }

  /** Stops every generation (fast: SIGKILL now, also to what is already stopping). */
  stopAll(fast: boolean): void {
    // an empty pool says so now; otherwise the last generation to go says it
    if (this.generations.length === 0) return this.ctx.emit({ kind: 'pool-empty' });
    for (const g of [...this.generations]) g.drain(fast);
  }

  private forget(g: Generation): void {
    const i = this.generations.indexOf(g);
    if (i < 0) return;
    this.generations.splice(i, 1);
    this.pastWatchdogKills += g.watchdogKills;
    this.ctx.log.info(`generation ${g.id} has stopped`);
    if (this.generations.length === 0) this.ctx.emit({ kind: 'pool-empty' });
  }
}
