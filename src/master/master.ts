// The master: its state and its handlers, each a few lines. Every input (a signal, a control
// request, a worker's exit or notification, the successor's or predecessor's message, a timer,
// the end of an operation's step) goes through one queue (loop.ts) and is handled one at a
// time, to the end, by a handler that never awaits; transitions.ts decides, per phase and
// event, which handler runs and the phase that follows. The long operations are objects the
// master holds: reload.ts, upgrade.ts (the predecessor's side), succession.ts (the successor's,
// until confirmed), stop.ts; inherited.ts turns the sockets it starts with into listeners.
import path from 'node:path';
import { isatty } from 'node:tty';
import type { Config } from '../config/types';
import { controlSocketPath, type ControlReply, type LastReload, type LastUpgrade, type StatusReply } from '../contract/control';
import type { InheritedFd } from '../contract/listen-fds';
import type { UpgradeEnv } from '../contract/upgrade-env';
import { ControlServer } from '../control/server';
import type { Logger } from '../log/logger';
import type { Generation } from '../pool/generation';
import { Pool } from '../pool/pool';
import { launchWorker, type Launch } from '../pool/worker-process';
import { closeListener, describeAll, type Listener } from '../sockets/listeners';
import { queuedClock, realClock, type Clock } from '../system/clock';
import { Tidy } from '../system/tidy';
import { removePidfile, writePidfile } from '../system/pidfile';
import { identify } from '../system/process';
import { preparePidfileFolder, prepareRuntimeDir } from '../system/runtime-dir';
import { SystemdNotifier } from '../systemd/notifier';
import { NotifyReceiver } from '../systemd/receiver';
import { launchSuccessor, type LaunchSuccessor } from '../upgrade/successor';
import { VERSION } from '../version';
import type { EventOf, MasterEvent } from './events';
import { FdStore } from './fd-store';
import { startListeners, successorPlan } from './inherited';
import { Reload, type ReloadContext } from './reload';
import { Stop, type StopContext } from './stop';
import { Succession, type SuccessionContext } from './succession';
import { CpuMeter, procSampler, statusLine, statusReply, type Sampler } from './status';
import { listenToSignals, requestEvent } from './inputs';
import { Loop, type Handlers } from './loop';
import type { Phase } from './transitions';
import { Upgrade, type UpgradeContext } from './upgrade';
import { Counters, type Result } from '../metrics/counters';
import type { MetricsServer } from '../metrics/server';
import type { ListenerSpec } from '../config/types';

export interface MasterOptions {
  config: Config;
  logger: Logger;
  inherited: InheritedFd[];
  /** Set when a predecessor master started this one (binary upgrade). */
  upgrade: UpgradeEnv | null;
  /** How this master was started: the program (node, its options, the script) and its arguments. */
  program: string[];
  args: string[];
  cwd: string;
  /** The outside world, for tests: the clock and how a worker process and the successor are started. */
  clock?: Clock;
  launch?: Launch;
  launchSuccessor?: LaunchSuccessor;
  /** Where status and workers.maxMemory read the workers' memory and CPU (and status the master's). */
  sampler?: Sampler;
  /** The random source of the workers' age jitter. */
  random?: () => number;
  /** A full garbage collection (node's --expose-gc `gc`), run a second after workers exit; none: never. */
  collectGarbage?: () => void;
}

/** Its handlers are the methods transitions.ts names (`implements Handlers`: a missing or misnamed one does not compile); only the loop calls them. */
export class Master implements Handlers {
  private readonly loop: Loop;
  private cfg: Config;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly systemd: SystemdNotifier;
  private readonly fdStore: FdStore;
  private readonly pool: Pool;
  private receiver?: NotifyReceiver;
  private control?: ControlServer;
  private listeners: Listener[] = [];
  /** The serving generation; null before the first is ready and after WINCH. */
  private current: Generation | null = null;
  private nextGeneration = 1;
  private reloading: Reload | null = null;
  /** The upgrade under way, or (manual mode) the successor ready beside us. */
  private upgrading: Upgrade | null = null;
  /** While we are a successor our predecessor has not confirmed. */
  private succession: Succession | null = null;
  private stopping: Stop | null = null;
  private lastReload: LastReload | null = null;
  private lastUpgrade: LastUpgrade | null = null;
  private readonly startedAt: number;
  private readonly cpu = new CpuMeter();
  /** The environment every worker starts from (LISTEN_*, NOTIFY_SOCKET, WATCHDOG_* removed). */
  private readonly baseEnv: NodeJS.ProcessEnv;
  /** Where status and workers.maxMemory read what the workers cost (and status the master). */
  private readonly sampler: Sampler;
  private readonly tidy: Tidy;
  /** What the metrics endpoint counts; kept whether it is on or not. */
  private readonly counters = new Counters();
  /** metrics.listen, once open (its code is loaded only then). */
  private metrics?: MetricsServer;
  /** An open or close of the metrics endpoint under way (they run in turn). */
  private metricsChange: Promise<void> = Promise.resolve();
  /** The master stops: an open still binding closes its server as soon as it has one. */
  private metricsClosed = false;
  private readonly metricsCpu = new CpuMeter();
  /** What the operations (Reload, Upgrade, Stop, Succession) use of the master: each takes its context's part. */
  private readonly ctx: ReloadContext & UpgradeContext & StopContext & SuccessionContext;
  private unlisten?: () => void;
  private exit!: (code: number) => void;
  private readonly exited = new Promise<number>((resolve) => (this.exit = resolve));

  constructor(private readonly opts: MasterOptions) {
    this.cfg = opts.config;
    this.log = opts.logger;
    this.loop = new Loop(this, this.log);
    this.clock = queuedClock(opts.clock ?? realClock, (fn) => this.run(fn));
    this.startedAt = this.clock.now();
    this.systemd = new SystemdNotifier(process.env, (m) => this.log.warn(m));
    this.fdStore = new FdStore((fields, fds) => this.systemd.send(fields, fds), this.log, this.systemd.fdStoreMax);
    this.baseEnv = { ...process.env };
    this.sampler = opts.sampler ?? procSampler;
    this.tidy = new Tidy(this.clock, opts.collectGarbage ?? (globalThis as { gc?: () => void }).gc);
    if (opts.upgrade) this.nextGeneration = opts.upgrade.nextGeneration;
    this.pool = new Pool({
      clock: this.clock,
      launch: opts.launch ?? launchWorker,
      log: this.log,
      run: (fn) => this.run(fn),
      emit: (e) => this.post(e),
      // right after spawn(), before the child can have been reaped: its start time is surely its own
      started: (pid) => this.succession?.send({ t: 'worker', pid, startTicks: identify(pid)?.startTicks }),
      gated: () => this.succession?.gated ?? false,
      exited: (pid, why) => {
        this.counters.exited(why);
        this.tidy.soon();
        void this.succession?.send({ t: 'worker-gone', pid });
      },
      notifySocket: () => this.receiver!.address,
      baseEnv: this.baseEnv,
      random: opts.random ?? Math.random,
      sample: (pgids) => this.sampler.groups(pgids),
    });
    this.ctx = {
      log: this.log,
      clock: this.clock,
      run: (fn) => this.run(fn),
      post: (e) => this.post(e),
      systemd: this.systemd,
      fdStore: this.fdStore,
      pool: this.pool,
      startGeneration: (c, l, s) => this.startGeneration(c, l, s),
      program: opts.program,
      args: opts.args,
      cwd: opts.cwd,
      env: { ...this.baseEnv, ...this.systemd.envForSuccessor() },
      launch: opts.launchSuccessor ?? launchSuccessor,
    };
  }

  /** Queues an event; handled at once unless an item is running (then right after it). */
  post(e: MasterEvent): void {
    this.loop.post(e);
  }

  /** Queues a component's input (a worker's exit, an operation's step), run like an event. */
  private run(fn: () => void): void {
    this.loop.run(fn);
  }

  // ---- start-up ----

  /** Runs the master until it stops; resolves with the process exit code. */
  async start(): Promise<number> {
    const cfg = this.cfg;
    const up = this.opts.upgrade;
    this.log.info(`baton ${VERSION} master starting (pid ${process.pid}, config ${cfg.file}${up ? ', successor of an upgrade' : ''})`);
    // Inputs that arrive while the sockets are being prepared wait in the queue.
    this.loop.hold();
    try {
      await this.prepare();
    } catch (e) {
      // nothing of ours stays behind: control socket, socket files, pidfile
      const reason = (e as Error).message;
      this.log.error(`cannot start: ${reason}`);
      this.cleanUp();
      await this.succession?.fail(`cannot start: ${reason}`);
      // a config error (EX_CONFIG: RestartPreventExitStatus=78 in the unit) or another failure
      return (e as { exitCode?: number }).exitCode === 78 ? 78 : 1;
    }
    this.log.info(`listening: ${describeAll(this.listeners) || '(no sockets)'}`);
    const gen = this.startGeneration(cfg, this.listeners);
    this.systemd.status(`starting generation ${gen.id}`);
    this.loop.release();
    return this.exited;
  }

  private async prepare(): Promise<void> {
    const cfg = this.cfg;
    const up = this.opts.upgrade;
    if (up) this.succession = new Succession(up, this.ctx);
    prepareRuntimeDir(cfg.runtimeDir);
    if (path.dirname(cfg.pidfile) !== cfg.runtimeDir) preparePidfileFolder(path.dirname(cfg.pidfile));
    const controlPath = this.succession?.controlPath(cfg) ?? controlSocketPath(cfg.runtimeDir);
    this.succession?.willMake(controlPath, cfg);
    this.control = await ControlServer.open(controlPath, (req, reply) => this.post(requestEvent(req, reply)), (m) => this.log.warn(m));
    this.receiver = new NotifyReceiver(cfg.name, this.pool, (sender, fields) => this.run(() => this.pool.notified(sender, fields)));
    this.unlisten = listenToSignals((e) => this.post(e));
    const ctx = { log: this.log, fdStore: this.fdStore, underSystemd: this.systemd.socket !== undefined, storeOn: this.fdStore.on(cfg) };
    if (up) {
      this.listeners = this.succession!.adopt(await successorPlan(this.opts.inherited, up.sources, cfg, ctx));
      return;
    }
    this.listeners = await startListeners(this.opts.inherited, cfg, ctx);
    writePidfile(cfg.pidfile);
    // a successor's waits for its confirmation: its predecessor holds the address until the hand-over
    if (cfg.metrics) await this.openMetrics(cfg.metrics.listen);
  }

  /** metrics.listen: the endpoint's code loaded now, and listening (it throws what stops a start). */
  private async openMetrics(spec: ListenerSpec): Promise<void> {
    const [{ MetricsServer }, { families }] = await Promise.all([import('../metrics/server'), import('../metrics/families')]);
    // its own CPU meter: a scrape must not move the baseline of status's and top's percentages
    const m = await MetricsServer.open(spec, () => families(this.statusNow(this.metricsCpu), this.counters), (w) => this.log.warn(w));
    // stopped (or handed over) while it was binding: it goes at once
    if (this.metricsClosed) return void m.close();
    this.metrics = m;
    this.log.info(spec.kind === 'unix' ? `metrics: unix socket ${spec.path}, GET /metrics` : `metrics: http://${m.address}/metrics`);
  }

  /** The endpoint follows metrics.listen: after a reload's commit, a successor's confirmation; off at the hand-over and the stop. */
  private moveMetrics(want: ListenerSpec | undefined): void {
    this.metricsChange = this.metricsChange.then(async () => {
      if (this.metrics && want?.text === this.metrics.spec.text) return;
      this.metrics?.close();
      this.metrics = undefined;
      if (!want) return;
      try {
        await this.openMetrics(want);
      } catch (e) {
        this.log.error(`${(e as Error).message}: no metrics until the next reload`);
      }
    });
  }

  /** A reload's outcome: what status shows, and what the metrics count. */
  private reloaded(o: LastReload): void {
    this.lastReload = o;
    this.counters.reload(resultOf(o), o.ms);
  }

  private upgraded(o: LastUpgrade): void {
    this.lastUpgrade = o;
    this.counters.upgrade(resultOf(o), o.ms);
  }

  /**
   * Run from a terminal (make run), the successor is not in its session: ^C reaches this
   * master, which is leaving, not the new one. Said, so nobody wonders why ^C stops nothing.
   */
  private sayDetached(): void {
    if (!isatty(0) && !isatty(2)) return;
    const pid = this.upgrading?.successor?.pid;
    this.log.warn(`the new master (pid ${pid}) runs detached from this terminal: ^C no longer stops it; baton stop -c ${this.cfg.file} does`);
  }

  /** The successor becomes the master: the metrics address is its to take (it binds it once confirmed). */
  private handOver(u: Upgrade): void {
    this.moveMetrics(undefined);
    u.handOver(this.nextGeneration, this.listeners);
  }

  private startGeneration(cfg: Config, listeners: Listener[], slots?: number): Generation {
    return this.pool.start(this.nextGeneration++, cfg, listeners, slots);
  }

  // ---- handlers: start-up ----

  startDone(e: EventOf<'generation-ready'>): Phase {
    this.current = this.pool.get(e.id)!;
    if (!this.succession) {
      this.systemd.ready(this.statusLine('running'));
      this.systemd.startWatchdog();
      return 'running';
    }
    try {
      this.succession.ready(e.id, this.cfg.pidfile);
    } catch (err) {
      this.failStart((err as Error).message);
      return 'stopping';
    }
    return 'unconfirmed';
  }

  startFailed(e: EventOf<'generation-failed'>): void {
    this.failStart(e.reason);
  }

  private failStart(reason: string): void {
    this.log.error(`cannot start: ${reason}`);
    this.systemd.status(`failed to start: ${reason}`);
    void this.succession?.fail(reason);
    this.beginStop(false, 'start-up failed', 1);
  }

  aborted(e: EventOf<'aborted'>): void {
    this.beginStop(false, e.reason, 0);
  }

  confirmed(e: EventOf<'confirmed'>): void {
    this.takeOver(e);
    this.systemd.ready(this.statusLine('running'));
    this.systemd.startWatchdog();
  }

  /** A stop reached both masters: the main process now, but stopping. */
  confirmedWhileStopping(e: EventOf<'confirmed'>): void {
    this.takeOver(e);
  }

  private takeOver(e: EventOf<'confirmed'>): void {
    this.log.info('the predecessor confirmed the upgrade: this master is the main process now');
    // past every number the predecessor used while both served
    if (e.nextGeneration !== undefined) this.nextGeneration = Math.max(this.nextGeneration, e.nextGeneration);
    this.succession!.confirm(this.listeners, this.control!, this.cfg, this.fdStore.on(this.cfg));
    this.moveMetrics(this.cfg.metrics?.listen);
    // The link says `master` to the predecessor once this handler returns (the predecessor
    // answers `baton upgrade` then). It does: an I/O callback never runs inside a handler, so
    // the loop is idle when the confirmation arrives and handles it before post() returns.
    this.succession = null;
  }

  /** Unconfirmed, a worker failed: the predecessor decides (one soaking us rolls the upgrade back). */
  reportFault(e: EventOf<'worker-failed'>): void {
    void this.succession!.send({ t: 'worker-failed', reason: e.reason });
  }

  /** Unconfirmed, a worker is over workers.maxMemory: as a failure to the predecessor; recycled once confirmed. */
  recycleUnconfirmed(e: EventOf<'recycle-due'>): void {
    if (e.why === 'memory') void this.succession!.send({ t: 'worker-failed', reason: `worker ${e.slot} (pid ${e.pid}) of generation ${e.id} is over workers.maxMemory` });
    this.recycleLater(e);
  }

  // ---- handlers: reload, WINCH, TTIN/TTOU ----

  reload(e: EventOf<'reload'>): void {
    this.log.info(`${e.source}: reloading ${this.cfg.file}`, { kind: 'reload-started', generation: this.nextGeneration });
    this.systemd.reloading(`reloading: generation ${this.current?.id ?? '-'} serving`);
    this.reloading = new Reload(this.ctx, this.clock.now(), { cfg: this.cfg, listeners: this.listeners, generation: this.current });
    if (e.reply) this.reloading.replies.push(e.reply);
    this.systemd.extendFor((this.reloading.cfg ?? this.cfg).workers.readyTimeoutMs);
  }

  /** Its generation is ready (a rolling reload's: every slot moved): commit now, or (reload.soakMs) serve beside the old one first. */
  reloadReady(e: EventOf<'generation-ready' | 'roll-done'>): Phase {
    const r = this.reloading!;
    // a rolling reload's generation serves from its first ready worker: the roll goes on
    if (r.roll && e.kind === 'generation-ready') {
      this.rollOn();
      return 'reloading';
    }
    const soakMs = r.cfg!.reload.soakMs;
    if (soakMs === 0) return this.reloadDone(e);
    this.reloading!.soak(e, soakMs);
    this.showStatus();
    return 'reloading';
  }

  /** A worker of either generation got ready or exited: a rolling reload moves what it can. */
  rollOn(): void {
    const roll = this.reloading!.roll;
    roll?.step();
    if (roll) this.systemd.status(`reloading: ${roll.describe()}; ${this.statusLine('running')}`);
    else this.showStatus();
  }

  reloadDone(e: EventOf<'generation-ready' | 'soak-over' | 'roll-done'>): Phase {
    const r = this.reloading!;
    const { cfg, listeners, generation } = r.commit(e);
    const old = this.current;
    this.current = generation;
    this.listeners = listeners;
    this.cfg = cfg;
    this.fdStore.sync(listeners, this.fdStore.on(cfg));
    this.moveMetrics(cfg.metrics?.listen);
    old?.drain(false, 'reload');
    this.pool.capDraining(cfg.reload.maxDraining);
    this.reloaded(r.done());
    return this.endReload({ ok: true, generation: generation.id, ms: this.lastReload!.ms }, '');
  }

  reloadFailed(e: EventOf<'generation-failed' | 'reload-failed'>): Phase {
    const r = this.reloading!;
    // a rolling reload gives the slots it replaced back first (then reload-failed)
    if (e.kind === 'generation-failed' && r.roll?.fail(e.reason, false)) return 'reloading';
    r.abandon(e.reason, e.kind === 'generation-failed' ? e : undefined);
    if (e.kind === 'reload-failed' && e.reverted) {
      this.reloaded({ ...r.outcome(e.reason), reverted: true });
      this.log.error(`reload reverted, generation ${this.current?.id ?? '-'} serves again: ${e.reason}`, { kind: 'reload-reverted', generation: r.generation?.id });
      return this.endReload({ ok: false, error: `reload reverted: ${e.reason}` }, `reload reverted: ${e.reason}; `);
    }
    this.reloaded(r.outcome(e.reason));
    this.log.error(`reload failed, generation ${this.current?.id ?? '-'} keeps serving: ${e.reason}`, { kind: 'reload-failed', generation: r.generation?.id });
    // READY=1 ends the reload for systemd (Type=notify-reload) even when it failed
    return this.endReload({ ok: false, error: `reload failed: ${e.reason}` }, `reload failed: ${e.reason}; `);
  }

  /** A worker failed: the soaking generation's reverts the reload (the old generation never stopped serving). */
  soakFault(e: EventOf<'worker-failed'>): Phase {
    const roll = this.reloading!.roll;
    // a rolling reload giving slots back: the old generation's worker failed too
    if (e.id === roll?.old?.id && roll.restores(e.slot)) {
      roll.restoreFailed(e.reason);
      return 'reloading';
    }
    if (!this.reloading!.soaking(e.id)) return 'reloading';
    return this.revert(e.reason);
  }

  recycleWhileSoaking(e: EventOf<'recycle-due'>): Phase {
    if (!this.reloading!.soaking(e.id) || e.why !== 'memory') {
      this.recycleLater(e);
      return 'reloading';
    }
    return this.revert(`worker ${e.slot} (pid ${e.pid}) of generation ${e.id} is over workers.maxMemory`);
  }

  private revert(reason: string): Phase {
    const r = this.reloading!;
    // a rolling reload has stopped old workers: their slots are given back first (then reload-failed)
    if (r.rollBack(reason)) return 'reloading';
    this.reloaded(r.revert(reason));
    const why = this.lastReload!.error!;
    this.log.error(`reload reverted: ${why}; generation ${r.generation!.id} is stopped, generation ${this.current?.id ?? '-'} kept serving throughout`, {
      kind: 'reload-reverted',
      generation: r.generation!.id,
    });
    return this.endReload({ ok: false, error: `reload reverted: ${why}` }, `reload reverted: ${why}; `);
  }

  private endReload(reply: ControlReply, statusPrefix: string): Phase {
    // a reload in side-by-side goes back to it, unless the successor exited meanwhile
    const next = this.upgrading ? 'side-by-side' : 'running';
    this.reloading!.answer(reply);
    this.reloading = null;
    this.systemd.stopExtending();
    this.systemd.ready(statusPrefix + this.statusLine(next));
    return next;
  }

  /** nginx's WINCH: stop every worker gracefully; the sockets stay open, HUP starts a new generation. */
  winch(): void {
    const gen = this.current;
    if (!gen) return void this.log.info('SIGWINCH: no workers are running');
    this.log.info('SIGWINCH: stopping all workers; the master keeps the sockets (HUP starts a new generation)');
    this.current = null;
    gen.drain();
    this.showStatus();
  }

  resize(e: EventOf<'resize'>): void {
    const sig = e.delta > 0 ? 'SIGTTIN' : 'SIGTTOU';
    const gen = this.current;
    if (!gen) return void this.log.warn(`${sig} refused: no generation is serving`);
    if (e.delta < 0 && gen.count <= 1) return void this.log.warn(`${sig} refused: generation ${gen.id} is down to one worker`);
    gen.resize(e.delta);
    this.log.info(`${sig}: generation ${gen.id} now has ${gen.count} worker(s)`);
    this.showStatus();
  }

  // ---- handlers: binary upgrade, the predecessor's side ----

  upgrade(e: EventOf<'upgrade'>): void {
    this.systemd.status(`upgrading; ${this.statusLine()}`);
    this.upgrading = new Upgrade(this.ctx, this.clock.now(), this.cfg, this.listeners, this.nextGeneration, e.source);
    // the successor's number: a generation this master starts meanwhile (HUP in side-by-side) takes the next
    this.nextGeneration++;
    if (e.reply) this.upgrading.replies.push(e.reply);
  }

  successorReady(): Phase {
    const u = this.upgrading!;
    const s = u.successor!;
    this.log.info(`successor pid ${s.pid} is ready after ${u.ms} ms (its parent is now pid ${s.reparentedTo})`);
    const soakMs = this.cfg.reload.soakMs;
    if (!u.manual && soakMs > 0) {
      u.soak(soakMs);
      this.systemd.status(`upgrading: successor pid ${s.pid} is ready and soaking for ${soakMs} ms; ${this.statusLine('running')}`);
      return 'upgrading';
    }
    if (!u.manual) {
      this.handOver(u);
      return 'upgrading';
    }
    u.keepBeside();
    this.systemd.status(`successor pid ${s.pid} ready (manual upgrade); ${this.statusLine()}`);
    u.answer({ ok: true, oldPid: process.pid, newPid: s.pid!, ms: u.ms, manual: true });
    return 'side-by-side';
  }

  soakedSuccessor(): void {
    const u = this.upgrading!;
    this.log.info(`successor pid ${u.successor!.pid} served its soak (reload.soakMs): handing over`);
    this.handOver(u);
  }

  upgradeDone(): void {
    this.upgraded(this.upgrading!.done());
    this.sayDetached();
    this.beginStop(false, 'handed over to the successor', 0, true);
  }

  /** Stopped meanwhile (the stop waited for this answer): already draining. */
  upgradeDoneWhileStopping(): void {
    this.upgraded(this.upgrading!.done());
  }

  upgradeFailed(e: EventOf<'upgrade-failed'>): Phase {
    const u = this.upgrading!;
    if (u.handedOver) {
      this.upgraded(u.lost(e.reason));
      this.beginStop(false, 'handed over to the successor', 0, true);
      return 'stopping';
    }
    this.rollBack(u, e.reason, e.reverted);
    const what = e.reverted ? 'upgrade rolled back' : 'upgrade failed and rolled back';
    this.log.error(`${what}, generation ${this.current?.id ?? '-'} keeps serving${e.reverted ? ' (it did throughout)' : ''}: ${e.reason}`, { kind: 'upgrade-rolled-back', successor: u.successor?.pid });
    this.systemd.status(`${e.reverted ? 'upgrade rolled back' : 'upgrade failed'}: ${e.reason}; ${this.statusLine('running')}`);
    return 'running';
  }

  /** A stop rolls back an upgrade not handed over yet: this one was, and we already drain. */
  upgradeFailedWhileStopping(e: EventOf<'upgrade-failed'>): void {
    this.upgraded(this.upgrading!.lost(e.reason));
  }

  /** Manual mode: the successor exited before we handed over (QUIT to it): rolled back. */
  successorGone(): Phase {
    this.successorExited();
    if (this.current) {
      this.systemd.status(this.statusLine('running'));
      return 'running';
    }
    // nginx's rollback: workers were WINCHed away for the successor; start them again
    this.reload({ kind: 'reload', source: 'rollback' });
    return 'reloading';
  }

  /** Likewise during a HUP in side-by-side: the reload goes on, and ends in running. */
  successorGoneWhileReloading(): void {
    this.successorExited();
  }

  private successorExited(): void {
    const u = this.upgrading!;
    this.log.warn(`the successor (pid ${u.successor!.pid}) exited before the upgrade was finished: rolled back`, { kind: 'upgrade-rolled-back', successor: u.successor!.pid });
    this.rollBack(u, 'the successor exited');
  }

  /** The upgrade is answered as failed and rolled back; what the successor left is removed, except our own files. */
  private rollBack(u: Upgrade, reason: string, reverted = false): void {
    const ours = new Set([this.control!.path, ...this.listeners.flatMap((l) => [l.ownedPath ?? '', l.spec?.kind === 'unix' ? l.spec.path : ''])]);
    this.upgraded(u.rollBack(reason, ours, reverted));
    this.upgrading = null;
  }

  // ---- handlers: stop ----

  stop(e: EventOf<'stop'>): void {
    this.beginStop(e.fast, e.source, 0);
    e.reply?.({ ok: true, pid: process.pid });
  }

  /** The reload fails first; in side-by-side (a HUP there) the stop finishes the upgrade as there. */
  cancelReloadAndStop(e: EventOf<'stop'>): void {
    const r = this.reloading!;
    r.abandon('the master is stopping');
    r.answer({ ok: false, error: 'reload failed: the master is stopping' });
    this.reloading = null;
    if (this.upgrading) this.handOverAndStop(e);
    else this.stop(e);
  }

  /** Not handed over yet: rolled back first. Handed over: `took-over` (or its failure) still answers the upgrade while we drain. */
  cancelUpgradeAndStop(e: EventOf<'stop'>): void {
    const u = this.upgrading!;
    if (!u.handedOver) {
      this.rollBack(u, 'the master is stopping');
      this.log.warn('upgrade rolled back: the master is stopping', { kind: 'upgrade-rolled-back', successor: u.successor?.pid });
    }
    this.beginStop(e.fast, e.source, 0, u.handedOver);
    e.reply?.({ ok: true, pid: process.pid });
  }

  /** Manual mode: QUIT, TERM or INT to the old master finishes the upgrade. */
  handOverAndStop(e: EventOf<'stop'>): void {
    const u = this.upgrading!;
    this.log.info(`${e.source}: finishing the manual upgrade: handing over to pid ${u.successor!.pid}`);
    this.handOver(u);
    this.upgraded(u.outcome(true));
    this.sayDetached();
    u.end();
    this.beginStop(false, 'handed over to the successor', 0, true);
    e.reply?.({ ok: true, pid: process.pid, handedOverTo: u.successor!.pid });
  }

  stopAgain(e: EventOf<'stop'>): void {
    this.stopping!.again(e.fast, e.source);
    e.reply?.({ ok: true, pid: process.pid });
  }

  private beginStop(fast: boolean, why: string, exitCode: number, handedOver = false): void {
    this.current = null;
    this.stopping = new Stop(this.ctx, fast, why, exitCode, handedOver);
  }

  finishStop(): void {
    if (!this.stopping!.finished()) return;
    this.cleanUp();
    this.log.info('stopped');
    this.exit(this.stopping!.exitCode);
  }

  private cleanUp(): void {
    this.tidy.stop();
    this.metricsClosed = true;
    this.metrics?.close();
    this.unlisten?.();
    this.systemd.stopExtending();
    this.systemd.stopWatchdog();
    // a socket systemd keeps for a restart keeps its file too (a later bind replaces it once stale)
    for (const l of this.listeners) closeListener(this.fdStore.holds(l) ? { ...l, ownedPath: undefined } : l);
    this.succession?.closeUnconfirmed();
    const handedOver = Boolean(this.stopping?.handedOver);
    const attempt = (what: string, fn: () => void) => tryToRemove(what, fn, this.log);
    attempt('the notify socket', () => this.receiver?.close());
    // after a hand-over control.sock is the successor's (it renamed its own over ours)
    attempt(`the control socket ${this.control?.path}`, () => this.control?.close(!handedOver));
    // each only if it still names us: after a hand-over the pidfile is the successor's
    attempt(`the pidfile ${this.cfg.pidfile}`, () => removePidfile(this.cfg.pidfile));
    attempt(`the pidfile ${this.cfg.pidfile}.oldbin`, () => removePidfile(`${this.cfg.pidfile}.oldbin`));
  }

  // ---- handlers: everything else ----

  reopenLogs(): void {
    const refused = this.log.reopen();
    if (refused) this.log.error(`SIGUSR1: log file not reopened, the log goes on where it was: ${refused}`);
    else this.log.info('SIGUSR1: log file reopened');
  }

  workersChanged(): void {
    this.showStatus();
  }

  /** A worker over workers.maxMemory or past its age: its generation starts the replacement (if nothing changed meanwhile). */
  recycle(e: EventOf<'recycle-due'>): void {
    this.pool.get(e.id)?.recycle(e);
  }

  /** Not in this phase: the generation asks again at its next check. */
  recycleLater(e: EventOf<'recycle-due'>): void {
    this.log.debug(`worker ${e.slot} (pid ${e.pid}) of generation ${e.id} is due for recycling (${e.why}): not while ${this.loop.phase}`);
  }

  /** STATUS= says what the phase does ('starting generation N', 'upgrading; …', 'stopping') until it ends. */
  keepStatus(): void {}

  status(e: EventOf<'status'>): void {
    e.reply(this.statusNow());
  }

  /** What `status` answers now (the metrics endpoint reads it too, with a CPU meter of its own). */
  private statusNow(cpu = this.cpu): StatusReply {
    return statusReply({
        cfg: this.cfg,
        phase: this.loop.phase,
        startedAt: this.startedAt,
        current: this.current,
        generations: this.pool.all(),
        watchdogKills: this.pool.watchdogKills,
        listeners: this.listeners,
        lastReload: this.lastReload,
        soak: this.reloading?.soakStatus() ?? this.upgrading?.soakStatus(),
        lastUpgrade: this.lastUpgrade,
        upgrade: this.succession ? 'unconfirmed successor' : this.upgrading?.successor ? `successor ${this.upgrading.successor.state}` : 'none',
        successorPid: this.upgrading?.successor?.pid,
        notifyDropped: this.receiver?.dropped,
        log: this.log.sinkStatus(),
        sampler: this.sampler,
        cpu,
      }, this.clock.now());
  }

  private statusLine(phase = this.loop.phase): string {
    return statusLine(phase, this.current);
  }

  private showStatus(): void {
    this.systemd.status(this.statusLine());
  }
}

const resultOf = (o: { ok: boolean; reverted?: boolean }): Result => (o.ok ? 'ok' : o.reverted ? 'reverted' : 'failed');

/** A file that cannot be removed (a read-only folder) is reported; the stop goes on. */
function tryToRemove(what: string, remove: () => void, log: Logger): void {
  try {
    remove();
  } catch (e) {
    log.warn(`cannot remove ${what}: ${(e as Error).message}`);
  }
}
