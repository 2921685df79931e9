import type { Config } from '../config/types';
import type { Logger } from '../log/logger';
import { passedOn, type Listener } from '../sockets/listeners';
import type { Clock } from '../system/clock';
import { MAX_DELAY_MS, restartDelayMs, STABLE_AFTER_MS } from './backoff';
import { adapted, workerCommand } from '../config/worker-command';
import { describeExit, type SlotExit, type WorkerExit } from './exit';
import type { ExitWhy } from '../contract/control';
import { killedByMasterSignal } from '../contract/master-signals';
import { Watchdog } from './watchdog';
import { Worker } from './worker';
import type { Launch } from './worker-process';
import { describeCpus } from '../system/cpus';
import { KILL_GRACE_MS } from '../system/process-group';
import { parseWatchdogUsec } from '../contract/watchdog';
import type { EventKind, LogEvent } from '../contract/journal-events';
import { LineBudget } from '../log/line-budget';
import { workerText } from '../log/safe-text';
import { Recycler, type RecycleDue, type RecycleHost, type SampleMemory } from './recycle';

/**
 * starting: its workers are coming up; it serves nothing the master counts on yet.
 * serving:  all were ready once; it keeps `count` workers, restarting crashed ones.
 * draining: replaced (or WINCHed), its workers are stopping.
 * failed:   never got ready; its workers are being stopped.
 */
export type GenerationState = 'starting' | 'serving' | 'draining' | 'failed';

/** What a generation tells the master (through the master's queue). */
export type PoolEvent =
  | { kind: 'generation-ready'; id: number }
  | { kind: 'generation-failed'; id: number; reason: string }
  /** A worker got ready, exited or was started: the status line may have changed. */
  | { kind: 'workers-changed' }
  /** Nothing of any generation runs any more. */
  | { kind: 'pool-empty' }
  /** A worker of a serving generation crashed or hung (it is restarted as ever): a reload in its soak reverts. */
  | { kind: 'worker-failed'; id: number; slot: number; reason: string }
  /** A worker is over workers.maxMemory or past its age: the master may have it recycled (Generation.recycle). */
  | ({ kind: 'recycle-due' } & RecycleDue);

/** The outside world of a generation, passed in. */
export interface GenerationContext {
  clock: Clock;
  launch: Launch;
  log: Pick<Logger, 'debug' | 'info' | 'warn' | 'error' | 'enabled'>;
  /** Runs an input (a worker's exit, spawn, ...) in the master's queue, one at a time. */
  run(fn: () => void): void;
  emit(e: PoolEvent): void;
  /**
   * Called as soon as a worker process exists, before anything else runs: a successor tells
   * its predecessor at once, which stops the worker if we die unconfirmed (a SIGKILL can come
   * at any moment; a worker nobody knows of would outlive us). A promise: the worker was
   * started gated (see gated()), and its program may run once the predecessor has been told.
   */
  started(pid: number): Promise<void> | void;
  /** Whether new workers wait at the start gate: an unconfirmed successor's (see config/worker-command.ts GATE_SH). */
  gated(): boolean;
  /** A worker's process group is gone (or given up on): a successor tells its predecessor, which then leaves that pid alone. */
  exited(pid: number, why: ExitWhy): void;
  /** The master's NOTIFY_SOCKET. */
  notifySocket(): string;
  /** The environment every worker starts from. */
  baseEnv: NodeJS.ProcessEnv;
  /** Called once the generation has no worker left and is draining or failed. */
  gone(g: Generation): void;
  /** Uniform in [0, 1): each worker's age jitter. */
  random(): number;
  /** Reads workers' memory (system/proc-sample.ts); called only with workers.maxMemory. */
  sample: SampleMemory;
  /** Each slot's last exit, of every generation (the pool's). */
  exits: Map<number, SlotExit>;
}

/**
 * The workers started by one config load, and the sockets they were given. It runs its own
 * slots: ready timeouts, restarts with backoff, stops with a deadline; the master only asks.
 */
export class Generation {
  state: GenerationState = 'starting';
  count: number;
  readonly startedAt: number;
  readyAt?: number;
  /** Workers its watchdog signalled (no WATCHDOG=1 within the period, or WATCHDOG=trigger). */
  watchdogKills = 0;
  private readonly slots = new Map<number, Worker>();
  /** Workers of slots that TTOU took away, still stopping: a TTIN may reuse the slot meanwhile. */
  private readonly leaving = new Set<Worker>();
  /** Crashes in a row per slot, for the restart backoff. */
  private readonly crashes = new Map<number, number>();
  /** Slots waiting out their crash backoff: the timer, when it fires (master's clock), the crash. */
  private readonly restartTimers = new Map<number, { cancel(): void; at: number; exit: SlotExit }>();
  /** Slots a rolling reload took away (retire): not restarted. */
  private readonly retired = new Set<number>();
  /** Filled slot by slot by a rolling reload: serving from its first ready worker. */
  private readonly rolling: boolean;
  private readonly recycler: Recycler;

  /** `slots`: how many of its slots start now (a rolling reload fills the rest one by one); all of them by default. */
  constructor(
    readonly id: number,
    readonly config: Config,
    readonly listeners: Listener[],
    private readonly ctx: GenerationContext,
    slots = config.workers.count,
  ) {
    this.count = slots;
    this.rolling = slots < config.workers.count;
    this.startedAt = ctx.clock.now();
    this.recycler = new Recycler(this.recycleHost());
    const auto = config.workers.countAuto && ` (workers.count "auto": ${describeCpus(config.workers.countAuto)})`;
    const rolling = slots < config.workers.count ? ` (a rolling reload: ${slots} of ${config.workers.count} now)` : '';
    ctx.log.info(`starting generation ${id}: ${config.workers.count} x ${JSON.stringify(config.workers.command)}${auto || ''}${rolling}`);
    for (let slot = 0; slot < this.count; slot++) this.spawn(slot, 0);
  }

  /** Every worker still running, the leaving ones and replacements starting too. */
  workers(): Worker[] {
    return [...this.slots.values(), ...this.leaving, ...this.recycler.replacements()].sort((a, b) => a.slot - b.slot);
  }

  /** Asked for every notification a worker sends: no copy, no sort. */
  byPid(pid: number): Worker | undefined {
    for (const w of this.slots.values()) if (w.pid === pid) return w;
    for (const w of this.leaving) if (w.pid === pid) return w;
    return this.recycler.byPid(pid);
  }

  get size(): number {
    return this.slots.size + this.leaving.size + this.recycler.size;
  }

  /** Workers recycled so far, by why. */
  get recycles(): Readonly<Record<'memory' | 'age', number>> {
    return this.recycler.counts;
  }

  /** The master's answer to recycle-due (a phase that allows it): the replacement starts, unless that is stale now. */
  recycle(e: RecycleDue): void {
    this.recycler.recycle(e);
  }

  private recycleHost(): RecycleHost {
    const { clock, log } = this.ctx;
    return {
      id: this.id,
      wc: this.wc,
      clock,
      log,
      random: () => this.ctx.random(),
      sample: (pgids) => this.ctx.sample(pgids),
      serving: () => this.state === 'serving',
      holders: () => this.slots.values(),
      holder: (slot) => this.slots.get(slot),
      launch: (slot, restarts) => this.start(new Worker(slot, this.id, restarts, clock.now())),
      hand: (w, why) => {
        const old = this.slots.get(w.slot);
        this.slots.set(w.slot, w);
        if (old) {
          this.leaving.add(old);
          this.stopWorker(old, why);
        }
        this.ctx.emit({ kind: 'workers-changed' });
      },
      stop: (w, why) => this.stopWorker(w, why),
      name: (w) => this.name(w),
      due: (e) => this.ctx.emit({ kind: 'recycle-due', ...e }),
    };
  }

  /** The last exit in `slot` of a worker of this generation or an older one (a newer generation's is not this worker's past). */
  lastExit(slot: number): SlotExit | undefined {
    const e = this.ctx.exits.get(slot);
    return e && e.generation <= this.id ? e : undefined;
  }

  /** Slots waiting out their crash backoff, and when each starts again. */
  backoff(): Array<{ slot: number; at: number; lastExit: SlotExit }> {
    return [...this.restartTimers].map(([slot, t]) => ({ slot, at: t.at, lastExit: t.exit })).sort((a, b) => a.slot - b.slot);
  }

  private get wc() {
    return this.config.workers;
  }

  /** A log line about `w` as a journal event. */
  private event(kind: EventKind, w: Worker): LogEvent {
    return { kind, generation: this.id, slot: w.slot, pid: w.pid };
  }

  private name(w: Worker): string {
    return `worker ${w.slot} (pid ${w.pid}) of generation ${this.id}`;
  }

  private spawn(slot: number, restarts: number): void {
    const w = new Worker(slot, this.id, restarts, this.ctx.clock.now());
    this.slots.set(slot, w);
    this.start(w);
  }

  /** Launches `w`'s process: a slot's worker, or a replacement (that holds no slot yet). */
  private start(w: Worker): Worker {
    const { clock, run, log } = this.ctx;
    const wc = this.wc;
    const slot = w.slot;
    w.watchdog = new Watchdog(clock, wc.watchdogMs, () => this.onHang(w, `sent no WATCHDOG=1 within ${w.watchdog.periodMs} ms`));
    w.lines = new LineBudget(clock, (n) => log.warn(`${this.name(w)}: ${n} more log line(s) its notifications caused were not written (${w.lines.limit})`));
    this.recycler.started(w);
    const sockets = passedOn(this.listeners);
    const gated = this.ctx.gated();
    const { argv, env } = workerCommand(wc, this.ctx.baseEnv, sockets, {
      NOTIFY_SOCKET: this.ctx.notifySocket(),
      BATON_WORKER_ID: String(slot),
      BATON_GENERATION: String(this.id),
    }, gated);
    w.proc = this.ctx.launch(
      { argv, cwd: wc.cwd, env, fds: sockets.fds, gated },
      {
        onSpawn: () => run(() => wc.ready === 'spawn' && this.markReady(w)),
        onExit: (e) => run(() => this.onExit(w, e)),
        onKillTimeout: () => run(() => log.warn(`${this.name(w)} still running ${wc.stopTimeoutMs} ms after ${w.hung ? wc.watchdogSignal : wc.stopSignal}: SIGKILL`)),
        onLingering: (pids) =>
          run(() =>
            log.error(
              `${this.name(w)}: pid(s) ${pids.join(', ')} still running ${KILL_GRACE_MS} ms after SIGKILL ` +
                '(another uid, or stuck in the kernel): cannot kill them, counting the worker as gone',
            ),
          ),
      },
    );
    if (wc.ready !== 'spawn') w.readyTimer = clock.after(wc.readyTimeoutMs, () => this.onReadyTimeout(w));
    log.debug(`worker ${slot} of generation ${this.id} started (pid ${w.pid})`);
    const told = w.pid > 0 ? this.ctx.started(w.pid) : undefined;
    if (gated) void Promise.resolve(told).then(() => w.proc?.openGate?.());
    this.ctx.emit({ kind: 'workers-changed' });
    return w;
  }

  /** READY=1 (or, for ready: spawn, the spawn itself). */
  markReady(w: Worker): void {
    if (w.state !== 'starting') return;
    w.state = 'ready';
    w.readyAt = this.ctx.clock.now();
    w.readyTimer?.cancel();
    // systemd's WatchdogSec= too is "activated when the start-up is completed"
    w.watchdog.arm();
    this.ctx.log.info(`${this.name(w)} ready in ${w.readyAt - w.startedAt} ms`);
    this.ctx.emit({ kind: 'workers-changed' });
    const over = this.recycler.ready(w);
    if (this.state === 'starting' && over) return this.fail(over);
    if (this.state === 'starting' && (this.rolling || (this.slots.size >= this.count && [...this.slots.values()].every((x) => x.state === 'ready')))) {
      this.state = 'serving';
      this.readyAt = w.readyAt;
      if (this.rolling) this.ctx.log.info(`generation ${this.id}: its first worker is ready in ${this.readyAt - this.startedAt} ms; it serves (a rolling reload)`);
      else this.ctx.log.info(`generation ${this.id} ready: ${this.count} worker(s) in ${this.readyAt - this.startedAt} ms`);
      this.ctx.emit({ kind: 'generation-ready', id: this.id });
      this.recycler.begin();
    }
  }

  /** A notification from one of our workers (or its descendants). */
  notified(w: Worker, fields: Map<string, string>): void {
    for (const [k, v] of fields) {
      if (k === 'READY' && v === '1') this.markReady(w);
      else if (k === 'STATUS') w.status = v;
      else if (k === 'STOPPING' && v === '1') this.workerLine(w, 'debug', `${this.name(w)} is stopping`);
      else if (k === 'WATCHDOG' && v === '1') w.watchdog.ping();
      else if (k === 'WATCHDOG' && v === 'trigger') this.onHang(w, 'sent WATCHDOG=trigger');
      else if (k === 'WATCHDOG_USEC') this.setWatchdog(w, v);
      else if (k !== 'BARRIER') this.workerLine(w, 'debug', `ignored ${workerText(k)}=${k === 'WATCHDOG' ? workerText(v) : ''} from ${this.name(w)}`);
    }
  }

  /**
   * A line a worker's notification causes, within the worker's LineBudget: what a worker sends
   * in a loop must not fill the disk. Its own text in it goes through workerText().
   */
  workerLine(w: Worker, level: 'debug' | 'info' | 'warn', text: string): void {
    if (this.ctx.log.enabled(level) && w.lines.take()) this.ctx.log[level](text);
  }

  /** WATCHDOG_USEC= from a worker: its own period from now on (sd_notify(3)), also when workers.watchdogMs is off. */
  private setWatchdog(w: Worker, v: string): void {
    const ms = parseWatchdogUsec(v);
    if (ms === undefined) return this.workerLine(w, 'warn', `${this.name(w)} sent WATCHDOG_USEC=${workerText(v)}: not a number of microseconds, ignored`);
    w.watchdog.setPeriod(ms === 'off' ? 0 : ms);
    this.workerLine(w, 'info', `${this.name(w)} set its watchdog ${ms === 'off' ? 'off' : `to ${ms} ms`}`);
    this.ctx.emit({ kind: 'workers-changed' });
  }

  /**
   * Its watchdog fired: the worker is hung. watchdogSignal to its process group (SIGABRT by
   * default: a core dump shows where it hung), SIGKILL at stopTimeoutMs; its exit is a crash.
   */
  private onHang(w: Worker, why: string): void {
    if (w.state !== 'starting' && w.state !== 'ready') return;
    const { watchdogSignal, stopTimeoutMs } = this.wc;
    const reason = `${this.name(w)} ${why}: hung`;
    this.ctx.log.error(`${reason}; sending ${watchdogSignal} to its process group, SIGKILL in ${stopTimeoutMs} ms`, this.event('watchdog-kill', w));
    this.watchdogKills++;
    w.hung = true;
    w.state = 'stopping';
    w.readyTimer?.cancel();
    w.watchdog.disarm();
    w.proc.stop(watchdogSignal, stopTimeoutMs);
    this.ctx.emit({ kind: 'workers-changed' });
    if (this.state === 'starting') this.fail(reason);
    else if (this.state === 'serving') this.ctx.emit({ kind: 'worker-failed', id: this.id, slot: w.slot, reason });
  }

  private onReadyTimeout(w: Worker): void {
    if (w.state !== 'starting') return;
    const reason =
      `${this.name(w)} did not send READY=1 within ${this.wc.readyTimeoutMs} ms` +
      (adapted(this.wc)
        ? " (the Node adapter sends it once the app's listen() takes one of baton's sockets; a listen on a host the socket is not bound to is left to the app, with a warning from the adapter)"
        : ' (a program that does not speak sd_notify needs "ready": "spawn")');
    if (this.state === 'starting') return this.fail(reason);
    if (this.recycler.notReady(w, `did not send READY=1 within ${this.wc.readyTimeoutMs} ms`)) return;
    this.ctx.log.error(`${reason}: stopping it`);
    w.timedOut = true;
    this.stopWorker(w, 'crash');
  }

  private onExit(w: Worker, e: WorkerExit): void {
    // a worker exits by itself (a crash) unless we stopped it; not getting ready counts as one
    const crashed = w.state !== 'stopping' || w.timedOut || w.hung;
    w.state = 'exited';
    w.readyTimer?.cancel();
    w.watchdog.disarm();
    w.lines.flush();
    if (this.slots.get(w.slot) === w) this.slots.delete(w.slot);
    this.leaving.delete(w);
    const why: ExitWhy = w.hung ? 'watchdog' : crashed ? 'crash' : (w.stopWhy ?? 'stop');
    if (w.pid > 0) this.ctx.exited(w.pid, why);
    const exit: SlotExit = { code: e.code, signal: e.signal, at: this.ctx.clock.now(), why, generation: this.id };
    this.ctx.exits.set(w.slot, exit);
    const what = `${this.name(w)} ${describeExit(e)}${w.hung ? ' (watchdog)' : ''}`;
    const replacement = this.recycler.exited(w, describeExit(e));
    const ev = this.event(crashed ? 'worker-crashed' : 'worker-exited', w);
    if (replacement === 'replacement') {
      this.ctx.log.info(`${what} (the replacement of a recycle)`, ev);
    } else if (replacement) {
      // the old worker of a recycle is gone before its replacement was ready: no restart, the replacement takes the slot
      this.slots.set(w.slot, replacement);
      this.ctx.log[crashed ? 'error' : 'info'](`${what}; its replacement (pid ${replacement.pid}), still starting, holds slot ${w.slot} now`, ev);
    } else if (this.state === 'starting' && w.restarts === 0 && killedByMasterSignal(e.signal)) {
      // libuv resets every signal to its default in the forked child; the shim's preloaded
      // guard ignores the master's signals only once sh is loaded. A burst such as systemctl
      // kill's (every process of the unit, then each new one) can land in that instant.
      this.ctx.log.warn(`${what} before it was ready, before it could ignore it (a signal burst such as systemctl kill's): starting it again`);
      this.spawn(w.slot, w.restarts + 1);
    } else if (this.state === 'starting') {
      this.ctx.log.error(`${what} before it was ready`, this.event('worker-crashed', w));
      this.fail(`${what} before it was ready`);
    } else if (this.state === 'serving' && crashed) {
      this.scheduleRestart(w, what, exit);
      this.ctx.emit({ kind: 'worker-failed', id: this.id, slot: w.slot, reason: what });
    } else {
      this.ctx.log[crashed ? 'error' : 'info'](what, ev);
    }
    this.ctx.emit({ kind: 'workers-changed' });
    this.forgetIfGone();
  }

  private scheduleRestart(w: Worker, what: string, exit: SlotExit): void {
    let n = this.crashes.get(w.slot) ?? 0;
    if (w.readyAt !== undefined && this.ctx.clock.now() - w.readyAt >= STABLE_AFTER_MS) n = 0;
    this.crashes.set(w.slot, ++n);
    const delay = restartDelayMs(n);
    const loop = delay >= MAX_DELAY_MS ? ' (crash loop: restarts slowed to the maximum)' : '';
    this.ctx.log.error(`${what}; restarting slot ${w.slot} in ${delay} ms, crash ${n} in a row${loop}`, this.event('worker-crashed', w));
    const timer = this.ctx.clock.after(delay, () => {
      this.restartTimers.delete(w.slot);
      if (this.state === 'serving' && w.slot < this.count && !this.slots.has(w.slot) && !this.retired.has(w.slot)) this.spawn(w.slot, w.restarts + 1);
    });
    this.restartTimers.set(w.slot, { cancel: () => timer.cancel(), at: this.ctx.clock.now() + delay, exit });
  }

  private stopWorker(w: Worker, why: ExitWhy, fast = false): void {
    // asked once: a later graceful stop changes nothing (the first deadline stands)
    if (w.state === 'exited' || (w.state === 'stopping' && !fast)) return;
    w.stopWhy ??= why;
    w.state = 'stopping';
    w.readyTimer?.cancel();
    w.watchdog.disarm();
    if (fast) w.proc.stop('SIGKILL', 0);
    else w.proc.stop(this.wc.stopSignal, this.wc.stopTimeoutMs);
  }

  private stopAll(fast: boolean, why: ExitWhy): void {
    this.recycler.end();
    for (const t of this.restartTimers.values()) t.cancel();
    this.restartTimers.clear();
    for (const w of this.workers()) this.stopWorker(w, why, fast);
    this.forgetIfGone();
  }

  /** starting → failed: its workers are stopped gently (one that never said READY=1 may have accepted). */
  fail(reason: string, fast = false, why: ExitWhy = 'reload'): void {
    if (this.state !== 'starting') return;
    this.state = 'failed';
    this.ctx.emit({ kind: 'generation-failed', id: this.id, reason });
    this.stopAll(fast, why);
  }

  /** Stops every worker with stopSignal and the deadline (fast: SIGKILL now); `why`: a reload replaced it, or a stop (WINCH too). */
  drain(fast = false, why: 'reload' | 'stop' = 'stop'): void {
    if (this.state === 'starting') return this.fail('the master is stopping', fast, 'stop');
    if (this.state === 'serving') {
      this.state = 'draining';
      const how = fast ? 'SIGKILL now: a fast stop' : `${this.wc.stopSignal}, deadline ${this.wc.stopTimeoutMs} ms`;
      this.ctx.log.info(`stopping generation ${this.id} (${this.size} worker(s), ${how})`);
    }
    this.stopAll(fast, why);
  }

  /** A rolling reload's step: a worker of this generation starts in `slot` (unless one holds it). */
  fill(slot: number): void {
    this.retired.delete(slot);
    if (slot >= this.count) this.count = slot + 1;
    if (!this.slots.has(slot) && !this.restartTimers.has(slot)) this.spawn(slot, 0);
  }

  /** A rolling reload's step: the worker in `slot` stops gracefully, for good (no restart, no recycle). */
  retire(slot: number): void {
    this.retired.add(slot);
    this.empty(slot, 'a rolling reload', 'reload');
    this.forgetIfGone();
  }

  /** Whether `slot` holds a ready worker. */
  readyIn(slot: number): boolean {
    return this.slots.get(slot)?.state === 'ready';
  }

  /** TTIN/TTOU: one worker more or fewer. */
  resize(delta: 1 | -1): void {
    if (delta > 0) return this.spawn(this.count++, 0);
    this.empty(--this.count, 'SIGTTOU', 'resize');
  }

  /** `slot` is taken away (`by`): no restart pending, no recycle, its worker stopping gracefully. */
  private empty(slot: number, by: string, why: ExitWhy): void {
    this.restartTimers.get(slot)?.cancel();
    this.restartTimers.delete(slot);
    this.recycler.cancel(slot, by);
    const w = this.slots.get(slot);
    if (!w) return;
    this.slots.delete(slot);
    this.leaving.add(w);
    this.stopWorker(w, why);
  }

  private forgetIfGone(): void {
    if ((this.state === 'draining' || this.state === 'failed') && this.size === 0) this.ctx.gone(this);
  }
}
