import { loadConfig } from '../config/load';
import type { Config } from '../config/types';
import type { ControlReply, LastReload } from '../contract/control';
import type { Logger, LoggerChange } from '../log/logger';
import type { Generation } from '../pool/generation';
import type { Clock, Timer } from '../system/clock';
import { applyRetunes, closeListener, planListeners, type Listener, type ListenerPlan } from '../sockets/listeners';
import type { MasterEvent, Reply } from './events';
import { Roll } from './roll';
import { intoSoak } from './soak';

export interface ReloadContext {
  log: Logger;
  clock: Pick<Clock, 'now' | 'after'>;
  /** Runs a step in the master's queue. */
  run(fn: () => void): void;
  post(e: MasterEvent): void;
  /** `slots`: how many start now (a rolling reload: none, the roll fills them). */
  startGeneration(cfg: Config, listeners: Listener[], slots?: number): Generation;
}

/**
 * HUP: the config from disk, the listeners it asks for (bound now, kept, or dropped later), a
 * new generation on them. Steps: load and plan, then the generation reports ready or failed
 * (generation-ready / generation-failed), or a step fails (reload-failed). With reload.soakMs
 * the ready generation then serves beside the old one until soak-over; a worker of it that
 * fails meanwhile (worker-failed, or due for memory) reverts the reload. The master then
 * commits or abandons it. Nothing changes for the serving generation before the commit.
 */
export class Reload {
  readonly replies: Reply[] = [];
  cfg?: Config;
  plan?: ListenerPlan;
  generation?: Generation;
  /** reload.strategy "rolling": the slots moving from the serving generation to this reload's. */
  roll?: Roll;
  private logChange?: LoggerChange;
  private abandoned = false;
  private soakTimer?: Timer;
  /** When the soak ends (ms on the master's clock); undefined when not soaking. */
  private soakUntil?: number;

  constructor(
    private readonly ctx: ReloadContext,
    readonly startedAt: number,
    private readonly current: { cfg: Config; listeners: Listener[]; generation: Generation | null },
  ) {
    try {
      const cfg = loadConfig(current.cfg.file);
      // opened before anything changes: a log.file that cannot be opened refuses the reload
      if (JSON.stringify(cfg.log) !== JSON.stringify(current.cfg.log)) this.logChange = ctx.log.prepareChange(cfg.log, cfg.name);
      this.cfg = cfg;
    } catch (e) {
      ctx.post({ kind: 'reload-failed', reason: (e as Error).message });
      return;
    }
    planListeners(current.listeners, this.cfg.listeners).then(
      (plan) => ctx.run(() => this.planned(plan)),
      (e: Error) => ctx.run(() => !this.abandoned && ctx.post({ kind: 'reload-failed', reason: e.message })),
    );
  }

  /** What `status` shows of this reload once it is over: a success, or the failure `error`. */
  outcome(error?: string): LastReload {
    const ok = error === undefined;
    return { at: new Date().toISOString(), ok, generation: this.generation?.id, ...(ok ? {} : { error }), ms: this.ctx.clock.now() - this.startedAt };
  }

  answer(reply: ControlReply): void {
    this.replies.splice(0).forEach((r) => r(reply));
  }

  private planned(plan: ListenerPlan): void {
    if (this.abandoned) return plan.added.forEach(closeListener);
    this.plan = plan;
    const cfg = this.cfg!;
    const old = this.current.generation;
    if (cfg.reload.strategy !== 'rolling' || !old) {
      this.generation = this.ctx.startGeneration(cfg, plan.active);
      return;
    }
    if (plan.added.length || plan.removed.length) {
      const what = [...plan.added.map((l) => `adds '${l.name}'`), ...plan.removed.map((l) => `removes '${l.name}'`)].join(', ');
      this.ctx.post({
        kind: 'reload-failed',
        reason: `a rolling reload cannot change the listeners (this config ${what}): old and new workers would serve different sockets slot by slot; set reload.strategy "generation" for this reload, then back`,
      });
      return;
    }
    this.generation = this.ctx.startGeneration(cfg, plan.active, 0);
    this.roll = new Roll(this.ctx, old, this.generation, cfg.reload.surge);
    this.roll.step();
  }

  /** Its generation is ready: it serves beside the old one for `ms`, then soak-over commits. */
  soak(ready: { id: number }, ms: number): void {
    this.assertOwn(ready);
    this.soakUntil = this.ctx.clock.now() + ms;
    this.soakTimer = this.ctx.clock.after(ms, () => this.ctx.post({ kind: 'soak-over', id: ready.id }));
    this.ctx.log.info(`generation ${ready.id} ready: it serves beside the old generation for ${ms} ms (reload.soakMs) before the reload commits`);
  }

  /** Whether `id` is the generation this reload is soaking (a rolling reload's: from its start). */
  soaking(id: number): boolean {
    return (this.soakUntil !== undefined || this.roll !== undefined) && id === this.generation?.id;
  }

  /** What status shows of the soak under way, if any. */
  soakStatus(): { of: 'reload'; generation: number; until: number } | undefined {
    return this.soakUntil === undefined ? undefined : { of: 'reload', generation: this.generation!.id, until: this.soakUntil };
  }

  /** A worker of the soaking generation failed (`reason`): abandoned; returns its outcome, `reverted`, with how far into the soak. */
  revert(reason: string): LastReload {
    const why = this.whyReverted(reason);
    this.abandon(why);
    return { ...this.outcome(why), reverted: true };
  }

  /**
   * A rolling reload's worker failed in the roll or its soak: the soak ends, the replaced slots
   * go back to the old generation (then reload-failed, reverted). False when not rolling, or
   * nothing was replaced: then the reload reverts as a generation reload does.
   */
  rollBack(reason: string): boolean {
    if (!this.roll) return false;
    if (this.roll.restoring) return true;
    const why = this.whyReverted(reason);
    this.soakTimer?.cancel();
    this.soakUntil = undefined;
    return this.roll.fail(why, true);
  }

  /** `reason`, and how far into the soak (or the roll) it came. */
  whyReverted(reason: string): string {
    const soakMs = this.cfg!.reload.soakMs;
    if (this.soakUntil === undefined) return `${reason}, during the rolling reload (${this.roll!.describe()})`;
    return intoSoak(reason, soakMs, this.soakUntil, this.ctx.clock.now());
  }

  /** A generation's report must be of the generation this reload started. */
  private assertOwn(e: { id: number }): void {
    if (e.id !== this.generation?.id) throw new Error(`a report of generation ${e.id}, not of the one under way (${this.generation?.id ?? 'none'})`);
  }

  /** `ready` (its generation's): the new config takes effect, its listeners, its log sink; returns what replaced what. */
  commit(ready: { id: number }): { cfg: Config; listeners: Listener[]; generation: Generation } {
    this.assertOwn(ready);
    for (const l of this.plan!.removed) {
      this.ctx.log.info(`listener '${l.name}' is no longer configured: closing it`);
      closeListener(l);
    }
    applyRetunes(this.plan!, this.ctx.log);
    this.logChange?.apply();
    return { cfg: this.cfg!, listeners: this.plan!.active, generation: this.generation! };
  }

  /** Once the master has taken the commit: logged; returns the outcome. */
  done(): LastReload {
    const outcome = this.outcome();
    this.ctx.log.info(`reload done: generation ${this.generation!.id} serving (${this.generation!.count} worker(s)) in ${outcome.ms} ms`, { kind: 'reload-done', generation: this.generation!.id });
    return outcome;
  }

  /** Undoes what the reload started: sockets it bound, its generation, the log sink it opened. `failed`: its generation's report, if that is why. */
  abandon(reason: string, failed?: { id: number }): void {
    if (failed) this.assertOwn(failed);
    if (this.abandoned) return;
    this.abandoned = true;
    this.soakTimer?.cancel();
    this.logChange?.discard();
    this.plan?.added.forEach(closeListener);
    // ready and soaking: its workers serve, and drain as a replaced generation does
    if (this.generation?.state === 'serving') this.generation.drain(false, 'reload');
    else this.generation?.fail(reason);
  }
}
