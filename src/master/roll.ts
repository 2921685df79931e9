import type { Logger } from '../log/logger';
import type { Generation } from '../pool/generation';
import type { MasterEvent } from './events';

export interface RollContext {
  log: Pick<Logger, 'info' | 'warn' | 'error'>;
  post(e: MasterEvent): void;
}

/**
 * A rolling reload (reload.strategy "rolling"), the slots of one generation moved to another a
 * few at a time, as uWSGI's chain reload and Puma's phased restart do: a worker of `to` starts
 * in a slot while there is room (workers alive in both generations, the stopping ones included,
 * below count + surge), and once it is ready the worker of `from` in that slot stops. With a
 * surge of 0 the old worker goes first. Forward: the old generation to the reload's, then
 * `roll-done`. A failure (fail()) rolls the replaced slots back the same way, the new
 * generation's workers stopping as the old config's are ready again, then `reload-failed`.
 * Driven by step(), called whenever a worker of either changed (it reads their state).
 */
export class Roll {
  private from: Generation | null;
  private to: Generation;
  /** Slots still to move, in order. */
  private pending: number[];
  /** Slots whose worker in `to` is starting; `from`'s still serves (surge) or is gone (surge 0). */
  private readonly moving = new Set<number>();
  /** Surge 0: the slot whose `from` worker was stopped first, before `to` fills it. */
  private emptied?: number;
  /** Slots moved forward: `from` (the old generation) no longer holds them. */
  private readonly replaced: number[] = [];
  private failure?: { reason: string; reverted: boolean };
  private over = false;
  private readonly limit: number;

  constructor(
    private readonly ctx: RollContext,
    readonly old: Generation | null,
    readonly next: Generation,
    private readonly surge: number,
  ) {
    this.from = old;
    this.to = next;
    const n = next.config.workers.count;
    this.limit = Math.max(n, old?.count ?? 0) + surge;
    this.pending = Array.from({ length: n }, (_, i) => i);
    ctx.log.info(`rolling reload: ${n} slot(s) to generation ${next.id}, at most ${this.limit} workers at once (reload.surge ${surge})`);
  }

  get restoring(): boolean {
    return this.failure !== undefined;
  }

  /** Restoring, the old generation's worker in `slot` is one starting to take its slot back. */
  restores(slot: number): boolean {
    return this.failure !== undefined && !this.over && this.moving.has(slot);
  }

  /** Progress, for STATUS= and the log. */
  describe(): string {
    const n = this.next.config.workers.count;
    if (this.failure) return `rolling back: ${this.pending.length + this.moving.size} slot(s) of generation ${this.old?.id} to restore`;
    return `rolling: ${this.replaced.length}/${n} slots on generation ${this.next.id}`;
  }

  /** Moves what it can: called at the start and whenever a worker got ready or exited. */
  step(): void {
    if (this.over) return;
    for (const slot of [...this.moving]) {
      if (!this.to.readyIn(slot)) continue;
      this.moving.delete(slot);
      this.from?.retire(slot);
      if (!this.failure) this.replaced.push(slot);
    }
    while (this.pending.length > 0) {
      const slot = this.pending[0];
      if (this.live() < this.limit && (this.surge > 0 || this.emptied === slot || !this.from)) {
        this.pending.shift();
        this.emptied = undefined;
        this.moving.add(slot);
        this.to.fill(slot);
        continue;
      }
      // surge 0: the old worker of the next slot goes first (once the one moving is ready)
      if (this.surge === 0 && this.emptied === undefined && this.moving.size === 0) {
        this.emptied = slot;
        this.from!.retire(slot);
        if (!this.failure) this.replaced.push(slot);
        continue;
      }
      break;
    }
    if (this.pending.length > 0 || this.moving.size > 0) return;
    this.over = true;
    if (!this.failure) return this.ctx.post({ kind: 'roll-done', id: this.next.id });
    this.next.drain(false, 'reload');
    const restored = this.replaced.length ? `; slot(s) ${this.replaced.join(', ')} restored to generation ${this.old!.id}` : '';
    this.ctx.log.info(`rolling reload rolled back${restored}`);
    this.ctx.post({ kind: 'reload-failed', reason: `${this.failure.reason}${restored}`, reverted: this.failure.reverted });
  }

  /**
   * A worker of the new generation failed (or the generation did, before it was ready): the
   * slots already replaced go back to the old generation, one by one as they came. Returns
   * false when there is nothing to give back (then the reload just fails).
   */
  fail(reason: string, reverted: boolean): boolean {
    if (this.failure) return true;
    this.failure = { reason, reverted };
    // done forward (in its soak): now backward
    this.over = false;
    // what the new generation was starting stops now; the old worker of such a slot still serves
    for (const slot of this.moving) this.next.retire(slot);
    const back = this.old ? [...this.replaced] : [];
    this.ctx.log.error(`rolling reload failed at slot ${this.replaced.length + 1} of ${this.next.config.workers.count}: ${reason}${back.length ? `; restoring slot(s) ${back.join(', ')} to generation ${this.old!.id}` : ''}`);
    if (!back.length) {
      this.over = true;
      return false;
    }
    this.moving.clear();
    this.emptied = undefined;
    this.from = this.next;
    this.to = this.old!;
    this.pending = [...back];
    this.step();
    return true;
  }

  /**
   * Restoring, a worker of the old generation failed too (its config no longer starts: the
   * code on disk changed under it, say). No more waiting slot by slot, which could go on for
   * ever: the old generation gets every slot back at once (it restarts a failing one with
   * backoff, as ever), the new one drains, and the reload fails saying both reasons.
   */
  restoreFailed(reason: string): void {
    if (!this.failure || this.over) return;
    this.over = true;
    for (const slot of this.pending.splice(0)) this.to.fill(slot);
    this.next.drain(false, 'reload');
    this.ctx.log.error(`rolling reload: restoring generation ${this.old!.id} failed too (${reason}); it gets every slot back at once`);
    this.ctx.post({
      kind: 'reload-failed',
      reason: `${this.failure.reason}; restoring slot(s) ${this.replaced.join(', ')} to generation ${this.old!.id} failed too: ${reason}`,
      reverted: this.failure.reverted,
    });
  }

  private live(): number {
    return (this.from?.size ?? 0) + this.to.size;
  }
}
