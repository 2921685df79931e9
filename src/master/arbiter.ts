// The master's state machine, in one place (as gunicorn's arbiter.py or nginx's
// ngx_master_process_cycle).
//
//   phase      starting ──ready──▶ running ◀──▶ reloading
//                 │                  │
//                 └──────────────────┴──TERM/QUIT/INT/stop──▶ stopping ──▶ exit
//
// Generations (see workers/generation.ts) live inside it: one `serving` generation at
// most, a `starting` one during start-up or a reload, and any number of `draining` or
// `failed` ones whose workers are on their way out. The master holds the sockets; every
// worker of every generation gets the same ones, so a socket never closes while any
// generation serves.
import fs from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../config/load';
import type { Config } from '../config/types';
import { ControlServer } from '../control/server';
import { controlSocketPath, type ControlReply, type ControlRequest } from '../contract/control';
import { prepareLoggerChange, type Logger, type LoggerChange } from '../log/logger';
import type { InheritedFd } from '../contract/listen-fds';
import {
  closeListener,
  describeAll,
  describeListener,
  inheritedListeners,
  passedOn,
  planListeners,
  type Listener,
  type ListenerPlan,
} from '../sockets/listeners';
import { SystemdNotifier } from '../systemd/notifier';
import { NotifyReceiver, type NotifySender } from '../systemd/receiver';
import { SuccessorLink } from '../upgrade/successor-link';
import type { UpgradeEnv } from '../contract/upgrade-env';
import { precheck } from '../upgrade/precheck';
import { SuccessorProcess } from '../upgrade/successor';
import { VERSION } from '../version';
import { MAX_DELAY_MS, restartDelayMs, STABLE_AFTER_MS } from '../pool/backoff';
import type { WorkerExit } from '../pool/exit';
import { Generation } from '../pool/generation';
import { KILL_GRACE_MS } from '../system/process-group';
import { Worker } from '../pool/worker';
import { removePidfile, writePidfile } from '../system/pidfile';
import { preparePidfileFolder, prepareRuntimeDir } from './runtime-dir';

export type Phase = 'starting' | 'running' | 'reloading' | 'upgrading' | 'stopping';

export interface ArbiterOptions {
  config: Config;
  logger: Logger;
  inherited: InheritedFd[];
  /** Set when a predecessor master started this one (binary upgrade). */
  upgrade: UpgradeEnv | null;
  /** How this master was started: the program (node, its options, the script) and its arguments. */
  program: string[];
  args: string[];
  cwd: string;
}

/** How long an upgrade started by SIGUSR2 waits for the signal burst of `systemctl kill` to end. */
const USR2_SETTLE_MS = 300;

/** How often EXTEND_TIMEOUT_USEC is renewed while a drain or a reload goes on. */
const EXTEND_EVERY_MS = 5000;

export class Arbiter {
  private cfg: Config;
  private readonly log: Logger;
  private readonly systemd: SystemdNotifier;
  private receiver!: NotifyReceiver;
  private control!: ControlServer;
  private phase: Phase = 'starting';
  private listeners: Listener[] = [];
  private readonly generations: Generation[] = [];
  /** The serving generation; null before the first is ready and after WINCH. */
  private current: Generation | null = null;
  private nextGeneration = 1;
  private readonly byPid = new Map<number, Worker>();
  private readonly readyTimers = new Map<Worker, NodeJS.Timeout>();
  /** Workers stopped for not getting ready: their exit counts as a crash. */
  private readonly timedOut = new Set<Worker>();
  /** The environment every worker starts from (LISTEN_*, NOTIFY_SOCKET, WATCHDOG_* removed). */
  private readonly baseEnv: NodeJS.ProcessEnv;
  private readonly startedAt = Date.now();
  private fastStop = false;
  /** Settles with the exit code once the master has stopped. */
  private readonly stopped: Promise<number>;
  private resolveStopped!: (code: number) => void;
  private extendTimer: NodeJS.Timeout | null = null;
  private lastReload: { at: string; ok: boolean; generation?: number; error?: string; ms: number } | null = null;
  private readonly opts: ArbiterOptions;
  /** Our end of the channel while we are a successor the predecessor has not confirmed yet. */
  private link: SuccessorLink | null = null;
  /** The successor we started (USR2), until it has taken over or been rolled back. */
  private successor: SuccessorProcess | null = null;
  private lastUpgrade: { at: string; ok: boolean; successor?: number; error?: string; ms: number } | null = null;
  /** Handing over to a successor: its pidfile, control socket and socket files are not ours to remove. */
  private retiring = false;
  /** A successor's inherited listeners its config no longer has, closed once confirmed. */
  private dropOnConfirm: Listener[] = [];

  constructor(opts: ArbiterOptions) {
    this.opts = opts;
    this.cfg = opts.config;
    this.log = opts.logger;
    this.systemd = new SystemdNotifier(process.env, (m) => this.log.warn(m));
    this.baseEnv = { ...process.env };
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
    if (opts.upgrade) {
      this.nextGeneration = opts.upgrade.nextGeneration;
      this.systemd.muted = true;
    }
  }

  private get isSuccessor(): boolean {
    return this.link !== null && !this.link.confirmed;
  }

  /** Runs the master until it stops; resolves with the process exit code. */
  async run(): Promise<number> {
    const cfg = this.cfg;
    const up = this.opts.upgrade;
    this.log.info(`baton ${VERSION} master starting (pid ${process.pid}, config ${cfg.file}${up ? ', successor of an upgrade' : ''})`);
    if (up) {
      this.link = new SuccessorLink(up.channelFd, {
        onConfirm: () => this.onConfirmed(),
        onAbort: (reason) => void this.stop(false, reason),
      });
    }
    try {
      prepareRuntimeDir(cfg.runtimeDir);
      if (path.dirname(cfg.pidfile) !== cfg.runtimeDir) preparePidfileFolder(path.dirname(cfg.pidfile));
      // A successor's control socket waits beside the predecessor's and replaces it when confirmed.
      const controlPath = up ? `${controlSocketPath(cfg.runtimeDir)}.${process.pid}` : controlSocketPath(cfg.runtimeDir);
      // said before they exist: a successor killed at any point leaves the predecessor the list
      const unixPaths = (cfg.listeners ?? []).flatMap((l) => (l.bind?.kind === 'unix' ? [l.bind.path] : []));
      this.link?.send({ t: 'files', sockets: [controlPath, ...unixPaths], pidfile: cfg.pidfile });
      this.control = await ControlServer.open(controlPath, (req) => this.onControl(req));
      this.receiver = new NotifyReceiver(cfg.name, this.byPid, (sender, fields) => this.onNotify(sender, fields));
      this.installSignals();
      const held = inheritedListeners(this.opts.inherited, (i) => up?.sources[i] ?? 'systemd');
      const plan = await planListeners(held, cfg.listeners);
      for (const l of plan.removed) {
        if (up && l.source === 'predecessor') {
          // dropped from the config by this upgrade: the predecessor still serves it, so it is
          // closed (and its socket file removed) only once the upgrade is confirmed
          if (l.spec?.kind === 'unix') l.ownedPath = l.spec.path;
          this.dropOnConfirm.push(l);
          continue;
        }
        this.log.warn(`inherited socket '${l.name}' is not among the configured listeners: closing it`);
        closeListener(l);
      }
      this.listeners = plan.active;
      if (!up) writePidfile(cfg.pidfile);
    } catch (e) {
      // nothing of ours stays behind: control socket, socket files, pidfile
      const reason = (e as Error).message;
      this.log.error(`cannot start: ${reason}`);
      this.cleanup();
      await this.link?.fail(`cannot start: ${reason}`);
      return 1;
    }
    this.log.info(`listening: ${describeAll(this.listeners) || '(no sockets)'}`);

    const gen = this.startGeneration(cfg, this.listeners);
    this.systemd.status(`starting generation ${gen.id}`);
    try {
      await gen.ready;
    } catch (e) {
      if (this.phase === 'stopping') return this.stopped;
      const reason = (e as Error).message;
      this.log.error(`cannot start: ${reason}`);
      this.systemd.status(`failed to start: ${reason}`);
      void this.link?.fail(reason);
      await this.stop(false, 'start-up failed');
      return 1;
    }
    this.current = gen;
    this.phase = 'running';
    this.log.info(`generation ${gen.id} ready: ${gen.count} worker(s) in ${gen.readyAt! - gen.startedAt} ms`);
    if (this.link) {
      // SPEC step 5: ready, so write the pidfile and tell the predecessor, then wait for it
      try {
        writePidfile(cfg.pidfile);
      } catch (e) {
        const reason = (e as Error).message;
        this.log.error(`cannot start: ${reason}`);
        void this.link.fail(reason);
        await this.stop(false, 'start-up failed');
        return 1;
      }
      this.link.send({ t: 'ready', generation: gen.id });
    } else {
      this.systemd.ready(this.statusLine());
      this.systemd.startWatchdog();
    }
    return this.stopped;
  }

  // ---- signals ----

  private installSignals(): void {
    const on = (sig: NodeJS.Signals, fn: () => void) =>
      process.on(sig, () => {
        try {
          fn();
        } catch (e) {
          this.log.error(`handling ${sig} failed: ${(e as Error).stack}`);
        }
      });
    on('SIGHUP', () => void this.reload('SIGHUP').catch(() => undefined));
    on('SIGTERM', () => void this.stop(false, 'SIGTERM'));
    on('SIGQUIT', () => void this.stop(false, 'SIGQUIT'));
    on('SIGINT', () => void this.stop(true, 'SIGINT'));
    on('SIGWINCH', () => this.winch());
    on('SIGUSR1', () => {
      this.log.reopen();
      this.log.info('SIGUSR1: log file reopened');
    });
    on('SIGTTIN', () => this.resize(+1));
    on('SIGTTOU', () => this.resize(-1));
    on('SIGUSR2', () => void this.upgrade('SIGUSR2').catch(() => undefined));
  }

  // ---- generations and workers ----

  private startGeneration(cfg: Config, listeners: Listener[]): Generation {
    const gen = new Generation(this.nextGeneration++, cfg, listeners);
    this.generations.push(gen);
    this.log.info(`starting generation ${gen.id}: ${gen.count} x ${JSON.stringify(cfg.workers.command)}`);
    try {
      for (let slot = 0; slot < gen.count; slot++) this.spawnWorker(gen, slot, 0);
    } catch (e) {
      // no ghost `starting` generation: stop what did start, and forget it once empty
      this.failGeneration(gen, `cannot start a worker: ${(e as Error).message}`);
      throw e;
    }
    return gen;
  }

  private spawnWorker(gen: Generation, slot: number, restarts: number): Worker {
    const wc = gen.config.workers;
    const { fds, names } = passedOn(gen.listeners);
    const w = new Worker({
      slot,
      generation: gen.id,
      config: wc,
      fds,
      names,
      notifySocket: this.receiver.address,
      baseEnv: this.baseEnv,
      restarts,
    });
    gen.slots.set(slot, w);
    if (w.pid > 0) this.byPid.set(w.pid, w);
    w.on('exit', (e: WorkerExit) => this.onWorkerExit(gen, w, e));
    w.on('kill-timeout', () =>
      this.log.warn(`worker ${slot} (pid ${w.pid}) of generation ${gen.id} still running ${wc.stopTimeoutMs} ms after ${wc.stopSignal}: SIGKILL`),
    );
    w.on('lingering', (pids: number[]) =>
      this.log.error(
        `worker ${slot} (pid ${w.pid}) of generation ${gen.id}: pid(s) ${pids.join(', ')} still running ${KILL_GRACE_MS} ms after SIGKILL ` +
          '(another uid, or stuck in the kernel): cannot kill them, counting the worker as gone',
      ),
    );
    if (wc.ready === 'spawn') {
      w.once('spawn', () => this.onWorkerReady(w));
    } else {
      const t = setTimeout(() => this.onReadyTimeout(gen, w), wc.readyTimeoutMs);
      this.readyTimers.set(w, t);
    }
    this.log.debug(`worker ${slot} of generation ${gen.id} started (pid ${w.pid})`);
    // the predecessor must be able to stop our workers if we die before it confirms us
    if (this.isSuccessor && w.pid > 0) this.link!.send({ t: 'worker', pid: w.pid });
    return w;
  }

  private generationOf(w: Worker): Generation | undefined {
    return this.generations.find((g) => g.id === w.generation);
  }

  private onWorkerReady(w: Worker): void {
    if (!w.markReady()) return;
    this.clearReadyTimer(w);
    const gen = this.generationOf(w);
    if (!gen) return;
    this.log.info(`worker ${w.slot} (pid ${w.pid}) of generation ${gen.id} ready in ${w.readyAt! - w.startedAt} ms`);
    gen.promoteIfReady();
    this.updateStatus();
  }

  private onReadyTimeout(gen: Generation, w: Worker): void {
    this.readyTimers.delete(w);
    if (w.state !== 'starting') return;
    const reason =
      `worker ${w.slot} (pid ${w.pid}) of generation ${gen.id} did not send READY=1 within ${gen.config.workers.readyTimeoutMs} ms` +
      ' (a program that does not speak sd_notify needs "ready": "spawn")';
    if (gen.state === 'starting') {
      this.failGeneration(gen, reason);
    } else {
      this.log.error(`${reason}: stopping it`);
      this.timedOut.add(w);
      w.stop(gen.config.workers.stopSignal, gen.config.workers.stopTimeoutMs);
    }
  }

  private clearReadyTimer(w: Worker): void {
    const t = this.readyTimers.get(w);
    if (t) clearTimeout(t);
    this.readyTimers.delete(w);
  }

  private failGeneration(gen: Generation, reason: string): void {
    if (!gen.fail(reason)) return;
    gen.clearRestartTimers();
    // A worker that never said READY=1 may still have accepted connections: stop it gently.
    for (const w of gen.workers()) w.stop(gen.config.workers.stopSignal, gen.config.workers.stopTimeoutMs);
    this.forgetIfEmpty(gen);
  }

  private drain(gen: Generation): void {
    gen.state = 'draining';
    gen.clearRestartTimers();
    const wc = gen.config.workers;
    this.log.info(`stopping generation ${gen.id} (${gen.slots.size} worker(s), ${wc.stopSignal}, deadline ${wc.stopTimeoutMs} ms)`);
    for (const w of gen.workers()) w.stop(wc.stopSignal, wc.stopTimeoutMs);
    this.forgetIfEmpty(gen);
  }

  private onWorkerExit(gen: Generation, w: Worker, e: WorkerExit): void {
    this.byPid.delete(w.pid);
    this.clearReadyTimer(w);
    if (gen.slots.get(w.slot) === w) gen.slots.delete(w.slot);
    // the worker already SIGKILLed what a crash left behind (its own children): see Worker.onExit
    const crashed = !w.stopRequested || this.timedOut.delete(w);
    const what = gen.describeWorkerExit(w, e);
    if (gen.state === 'starting') {
      this.log.error(`${what} before it was ready`);
      this.failGeneration(gen, `${what} before it was ready`);
    } else if (gen.state === 'serving' && crashed) {
      this.scheduleRestart(gen, w, what);
    } else {
      this.log.info(what);
    }
    this.forgetIfEmpty(gen);
    this.updateStatus();
  }

  private scheduleRestart(gen: Generation, w: Worker, what: string): void {
    if (this.phase === 'stopping') {
      this.log.info(what);
      return;
    }
    let n = gen.crashes.get(w.slot) ?? 0;
    if (w.readyAt !== undefined && Date.now() - w.readyAt >= STABLE_AFTER_MS) n = 0;
    gen.crashes.set(w.slot, ++n);
    const delay = restartDelayMs(n);
    const loop = delay >= MAX_DELAY_MS ? ' (crash loop: restarts slowed to the maximum)' : '';
    this.log.error(`${what}; restarting slot ${w.slot} in ${delay} ms, crash ${n} in a row${loop}`);
    const t = setTimeout(() => {
      gen.restartTimers.delete(w.slot);
      if (gen.state !== 'serving' || this.phase === 'stopping' || w.slot >= gen.count || gen.slots.has(w.slot)) return;
      this.spawnWorker(gen, w.slot, w.restarts + 1);
      this.updateStatus();
    }, delay);
    gen.restartTimers.set(w.slot, t);
  }

  private forgetIfEmpty(gen: Generation): void {
    if ((gen.state === 'draining' || gen.state === 'failed') && gen.slots.size === 0) {
      const i = this.generations.indexOf(gen);
      if (i >= 0) {
        this.generations.splice(i, 1);
        this.log.info(`generation ${gen.id} has stopped`);
      }
    }
    this.maybeFinishStop();
  }

  // ---- worker notifications ----

  private onNotify(sender: NotifySender, fields: Map<string, string>): void {
    // The receiver has dropped, unread, whatever no worker (or worker's descendant) sent.
    const w = this.byPid.get(sender.worker);
    if (!w) return;
    if (sender.truncated) {
      this.log.warn(`worker ${w.slot} (pid ${w.pid}) sent a notification longer than 4096 bytes: ignored, as systemd does`);
      return;
    }
    for (const [k, v] of fields) {
      if (k === 'READY' && v === '1') this.onWorkerReady(w);
      else if (k === 'STATUS') w.status = v;
      else if (k === 'STOPPING' && v === '1') this.log.debug(`worker ${w.slot} (pid ${w.pid}) is stopping`);
      else if (k === 'WATCHDOG' && v === '1') w.lastWatchdog = Date.now();
      else if (k !== 'BARRIER') this.log.debug(`ignored ${k}= from worker ${w.slot} (pid ${w.pid})`);
    }
  }

  // ---- reload, resize, WINCH ----

  /** HUP: a new generation from the config on disk; the old one drains once it is all ready. */
  async reload(source: string): Promise<number> {
    if (this.phase !== 'running' || this.isSuccessor) {
      const why =
        this.phase === 'reloading' ? 'a reload is already under way'
        : this.phase === 'upgrading' ? 'an upgrade is under way'
        : this.isSuccessor ? 'this master is a successor its predecessor has not confirmed yet'
        : `the master is ${this.phase}`;
      this.log.warn(`${source}: reload refused: ${why}`);
      throw new Error(`reload refused: ${why}`);
    }
    this.phase = 'reloading';
    const t0 = Date.now();
    this.log.info(`${source}: reloading ${this.cfg.file}`);
    this.systemd.reloading(`reloading: generation ${this.current?.id ?? '-'} serving`);
    let plan: ListenerPlan | undefined;
    let gen: Generation | undefined;
    let logChange: LoggerChange | undefined;
    try {
      const cfg = loadConfig(this.cfg.file);
      // opened before anything changes: a log.file that cannot be opened refuses the reload
      if (JSON.stringify(cfg.log) !== JSON.stringify(this.cfg.log)) logChange = prepareLoggerChange(this.log, cfg.log, cfg.name);
      plan = await planListeners(this.listeners, cfg.listeners);
      gen = this.startGeneration(cfg, plan.active);
      this.keepExtendingTimeout(cfg.workers.readyTimeoutMs);
      await gen.ready;
      if (this.phase !== 'reloading') throw new Error(`the master is ${this.phase}`);
      const old = this.current;
      this.current = gen;
      this.listeners = plan.active;
      for (const l of plan.removed) {
        this.log.info(`listener '${l.name}' is no longer configured: closing it`);
        closeListener(l);
      }
      if (old) this.drain(old);
      logChange?.apply();
      this.cfg = cfg;
      this.phase = 'running';
      const ms = Date.now() - t0;
      this.lastReload = { at: new Date().toISOString(), ok: true, generation: gen.id, ms };
      this.log.info(`reload done: generation ${gen.id} serving (${gen.count} worker(s)) in ${ms} ms`);
      this.stopExtendingTimeout();
      this.systemd.ready(this.statusLine());
      return gen.id;
    } catch (e) {
      const reason = (e as Error).message;
      logChange?.discard();
      plan?.added.forEach(closeListener);
      if (gen) this.failGeneration(gen, reason);
      this.stopExtendingTimeout();
      this.lastReload = { at: new Date().toISOString(), ok: false, generation: gen?.id, error: reason, ms: Date.now() - t0 };
      if (this.phase === 'reloading') {
        this.phase = 'running';
        this.log.error(`reload failed, generation ${this.current?.id ?? '-'} keeps serving: ${reason}`);
        // READY=1 ends the reload for systemd (Type=notify-reload) even when it failed
        this.systemd.ready(`reload failed: ${reason}; ${this.statusLine()}`);
      }
      throw new Error(`reload failed: ${reason}`);
    }
  }

  private resize(delta: 1 | -1): void {
    const sig = delta > 0 ? 'SIGTTIN' : 'SIGTTOU';
    const gen = this.current;
    if (this.phase !== 'running' || !gen) {
      this.log.warn(`${sig} refused: ${this.phase !== 'running' ? `the master is ${this.phase}` : 'no generation is serving'}`);
      return;
    }
    if (delta < 0 && gen.count <= 1) {
      this.log.warn(`${sig} refused: generation ${gen.id} is down to one worker`);
      return;
    }
    if (delta > 0) {
      this.spawnWorker(gen, gen.count++, 0);
    } else {
      const slot = --gen.count;
      clearTimeout(gen.restartTimers.get(slot));
      gen.restartTimers.delete(slot);
      gen.slots.get(slot)?.stop(gen.config.workers.stopSignal, gen.config.workers.stopTimeoutMs);
    }
    this.log.info(`${sig}: generation ${gen.id} now has ${gen.count} worker(s)`);
    this.updateStatus();
  }

  /** nginx's WINCH: stop every worker gracefully; the sockets stay open, HUP starts workers again. */
  private winch(): void {
    if (this.phase !== 'running') return void this.log.warn(`SIGWINCH refused: the master is ${this.phase}`);
    const gen = this.current;
    if (!gen) return void this.log.info('SIGWINCH: no workers are running');
    this.log.info('SIGWINCH: stopping all workers; the master keeps the sockets (HUP starts a new generation)');
    this.current = null;
    this.drain(gen);
    this.updateStatus();
  }

  // ---- binary upgrade (USR2), predecessor side ----

  /**
   * SPEC "Binary upgrade". Resolves with the successor's pid once it is the master (auto
   * mode) or once it is ready beside us (manual mode); rejects with the reason after a
   * rollback, which leaves this master serving as before.
   */
  async upgrade(source: string): Promise<{ successor: number; ms: number; manual: boolean }> {
    const refuse = (why: string): never => {
      this.log.warn(`${source}: upgrade refused: ${why}`);
      throw new Error(`upgrade refused: ${why}`);
    };
    // nginx's `getppid() > 1 || ngx_new_binary` rule, made explicit
    if (this.isSuccessor) refuse('this master is a successor its predecessor has not confirmed yet');
    if (this.successor) refuse(`an upgrade is already under way (successor pid ${this.successor.pid ?? 'starting'})`);
    if (this.phase !== 'running') refuse(this.phase === 'reloading' ? 'a reload is under way' : `the master is ${this.phase}`);
    this.phase = 'upgrading';
    const t0 = Date.now();
    const cfg = this.cfg;
    const oldbin = `${cfg.pidfile}.oldbin`;
    let renamed = false;
    let succ: SuccessorProcess | undefined;
    this.log.info(`${source}: binary upgrade: checking ${cfg.file} with the code on disk`);
    this.systemd.status(`upgrading; ${this.statusLine()}`);
    try {
      // `systemctl kill -s USR2` signals every process of the unit and keeps signalling new
      // ones until the cgroup stops growing: a process started in that burst (the check, the
      // successor, both without handlers yet) would get USR2 too and die of it. Let it pass.
      if (source === 'SIGUSR2') await new Promise((r) => setTimeout(r, USR2_SETTLE_MS));
      let problem = await precheck(this.opts.program, this.opts.cwd, this.baseEnv, cfg.file);
      if (problem?.endsWith('exited with SIGUSR2)')) {
        this.log.warn('the config check was killed by SIGUSR2 (a late signal burst): checking again');
        await new Promise((r) => setTimeout(r, USR2_SETTLE_MS));
        problem = await precheck(this.opts.program, this.opts.cwd, this.baseEnv, cfg.file);
      }
      if (problem) throw new Error(`the code on disk refuses the config: ${problem}`);
      if (this.phase !== 'upgrading') throw new Error(`the master is ${this.phase}`);
      fs.renameSync(cfg.pidfile, oldbin);
      renamed = true;
      succ = new SuccessorProcess({
        argv: [...this.opts.program, ...this.opts.args],
        cwd: this.opts.cwd,
        env: { ...this.baseEnv, ...this.systemd.envForSuccessor() },
        ...passedOn(this.listeners),
        nextGeneration: this.nextGeneration,
      });
      this.successor = succ;
      const s = succ;
      const timer = setTimeout(() => s.fail(`the successor was not ready within ${cfg.upgrade.timeoutMs} ms`), cfg.upgrade.timeoutMs);
      try {
        await succ.ready;
      } finally {
        clearTimeout(timer);
      }
      if (this.phase !== 'upgrading') throw new Error(`the master is ${this.phase}`);
      const ms = Date.now() - t0;
      this.log.info(`successor pid ${succ.pid} is ready after ${ms} ms (its parent is now pid ${succ.reparentedTo})`);
      if (cfg.upgrade.mode === 'manual') {
        this.phase = 'running';
        void succ.closed.then(() => this.onSuccessorGone(s));
        this.log.info(
          `manual upgrade: both masters serve. To finish: WINCH, then QUIT to this master (pid ${process.pid}). ` +
            `To roll back: HUP to this master, QUIT to the successor (pid ${succ.pid})`,
        );
        this.systemd.status(`successor pid ${succ.pid} ready (manual upgrade); ${this.statusLine()}`);
        return { successor: succ.pid!, ms, manual: true };
      }
      this.handOver(succ, ms);
      return { successor: succ.pid!, ms, manual: false };
    } catch (e) {
      const reason = (e as Error).message;
      if (succ) this.abortSuccessor(succ, reason);
      if (renamed) this.restorePidfile();
      this.successor = null;
      this.lastUpgrade = { at: new Date().toISOString(), ok: false, successor: succ?.pid, error: reason, ms: Date.now() - t0 };
      if (this.phase === 'upgrading') this.phase = 'running';
      this.log.error(`upgrade failed and rolled back, generation ${this.current?.id ?? '-'} keeps serving: ${reason}`);
      this.systemd.status(`upgrade failed: ${reason}; ${this.statusLine()}`);
      throw new Error(`upgrade failed: ${reason}`);
    }
  }

  private restorePidfile(): void {
    try {
      fs.renameSync(`${this.cfg.pidfile}.oldbin`, this.cfg.pidfile);
    } catch (e) {
      this.log.warn(`cannot rename ${this.cfg.pidfile}.oldbin back: ${(e as Error).message}; writing the pidfile anew`);
      writePidfile(this.cfg.pidfile);
    }
  }

  /** SPEC step 6: systemd gets the new main pid, the successor its confirmation; we drain and exit. */
  private handOver(succ: SuccessorProcess, ms: number): void {
    // systemd reads notifications before SIGCHLD, so MAINPID= lands before our exit does
    this.systemd.send({ MAINPID: succ.pid!, STATUS: `handing over to pid ${succ.pid}` });
    succ.confirm();
    this.lastUpgrade = { at: new Date().toISOString(), ok: true, successor: succ.pid, ms };
    this.log.info(`upgrade done: master pid ${process.pid} -> ${succ.pid} in ${ms} ms; this master now drains and exits`);
    this.retiring = true;
    // no longer systemd's main process: it would refuse our STOPPING=1/STATUS= (NotifyAccess=main)
    this.systemd.muted = true;
    this.systemd.stopWatchdog();
    for (const l of this.listeners) l.ownedPath = undefined;
    setImmediate(() => void this.stop(false, 'handed over to the successor'));
  }

  /** Manual mode: the successor exited before we handed over (QUIT to it): roll back. */
  private onSuccessorGone(succ: SuccessorProcess): void {
    if (this.successor !== succ || this.retiring) return;
    this.successor = null;
    this.restorePidfile();
    this.log.warn(`the successor (pid ${succ.pid}) exited before the upgrade was finished: rolled back`);
    this.lastUpgrade = { at: new Date().toISOString(), ok: false, successor: succ.pid, error: 'the successor exited', ms: Date.now() - succ.startedAt };
    this.abortSuccessor(succ, 'the successor exited');
    if (!this.current && this.phase === 'running') void this.reload('rollback').catch(() => undefined);
    else this.systemd.status(this.statusLine());
  }

  // ---- binary upgrade, successor side ----

  private onConfirmed(): void {
    this.log.info('the predecessor confirmed the upgrade: this master is the main process now');
    this.systemd.muted = false;
    for (const l of this.dropOnConfirm) {
      this.log.info(`listener '${l.name}' is no longer configured: closing it`);
      closeListener(l);
    }
    this.dropOnConfirm = [];
    try {
      this.control.adopt(controlSocketPath(this.cfg.runtimeDir));
    } catch (e) {
      this.log.warn(`cannot take over the control socket: ${(e as Error).message}`);
    }
    if (this.phase !== 'stopping') this.systemd.ready(this.statusLine());
    this.systemd.startWatchdog();
  }

  // ---- stop ----

  /** Graceful (stopSignal, then SIGKILL at stopTimeoutMs) or fast (SIGKILL now). Idempotent. */
  stop(fast: boolean, why: string): Promise<number> {
    // manual upgrade with the successor ready: QUIT (or INT) to the old master finishes it
    if (this.successor?.state === 'ready' && !this.retiring) {
      this.handOver(this.successor, Date.now() - this.successor.startedAt);
      return this.stopped;
    }
    if (this.phase === 'stopping') {
      if (fast && !this.fastStop) {
        this.fastStop = true;
        this.log.warn(`${why}: fast stop, killing every worker now`);
        for (const g of this.generations) for (const w of g.workers()) w.stop('SIGKILL', 0);
      }
      return this.stopped;
    }
    this.phase = 'stopping';
    this.fastStop = fast;
    this.log.info(`${why}: ${fast ? 'fast stop (no drain)' : 'graceful stop'}`);
    this.systemd.stopping('stopping');
    this.current = null;
    for (const gen of [...this.generations]) {
      if (gen.state === 'starting') gen.fail('the master is stopping');
      if (gen.state === 'serving') gen.state = 'draining';
      gen.clearRestartTimers();
      const wc = gen.config.workers;
      for (const w of gen.workers()) (fast ? w.stop('SIGKILL', 0) : w.stop(wc.stopSignal, wc.stopTimeoutMs));
    }
    if (!fast) this.keepExtendingTimeout(Math.max(0, ...this.generations.map((g) => g.config.workers.stopTimeoutMs)));
    this.maybeFinishStop();
    return this.stopped;
  }

  private maybeFinishStop(): void {
    if (this.phase !== 'stopping' || this.cleanedUp || this.generations.some((g) => g.slots.size > 0)) return;
    this.cleanup();
    this.log.info('stopped');
    this.resolveStopped(0);
  }

  private cleanedUp = false;

  private cleanup(): void {
    this.cleanedUp = true;
    this.stopExtendingTimeout();
    this.systemd.stopWatchdog();
    for (const t of this.readyTimers.values()) clearTimeout(t);
    this.listeners.forEach(closeListener);
    // never confirmed: the predecessor keeps serving these, files included
    for (const l of this.dropOnConfirm) closeListener({ ...l, ownedPath: undefined });
    // a file that cannot be removed (a read-only folder) is reported; the stop goes on
    const attempt = (what: string, fn: () => void) => {
      try {
        fn();
      } catch (e) {
        this.log.warn(`cannot remove ${what}: ${(e as Error).message}`);
      }
    };
    attempt('the notify socket', () => this.receiver?.close());
    attempt(`the control socket ${this.control?.path}`, () => this.control?.close(!this.retiring));
    // each only if it still names us: after a hand-over the pidfile is the successor's
    attempt(`the pidfile ${this.cfg.pidfile}`, () => removePidfile(this.cfg.pidfile));
    attempt(`the pidfile ${this.cfg.pidfile}.oldbin`, () => removePidfile(`${this.cfg.pidfile}.oldbin`));
  }

  /** Rolls back a successor; once it is gone, what it left behind (files included) goes too. */
  private abortSuccessor(succ: SuccessorProcess, reason: string): void {
    const ours = new Set([this.control.path, ...this.listeners.flatMap((l) => [l.ownedPath ?? '', l.spec?.kind === 'unix' ? l.spec.path : ''])]);
    void succ.abort(reason, this.cfg.workers.stopSignal, this.cfg.workers.stopTimeoutMs + 2000, ours).then(({ removed, lingering }) => {
      if (lingering.length) this.log.error(`the successor's workers: pid(s) ${lingering.join(', ')} still running after SIGKILL (another uid, or stuck in the kernel)`);
      if (removed.length) this.log.info(`removed what the successor (pid ${succ.pid}) left behind: ${removed.join(', ')}`);
    });
  }

  /** While something long is under way, keep systemd's timeout from firing first. */
  private keepExtendingTimeout(deadlineMs: number): void {
    this.stopExtendingTimeout();
    const until = Date.now() + deadlineMs;
    const extend = () => this.systemd.extendTimeout(Math.max(until - Date.now(), 0) + 2 * EXTEND_EVERY_MS);
    extend();
    this.extendTimer = setInterval(extend, EXTEND_EVERY_MS);
    this.extendTimer.unref();
  }

  private stopExtendingTimeout(): void {
    if (this.extendTimer) clearInterval(this.extendTimer);
    this.extendTimer = null;
  }

  // ---- control socket ----

  private async onControl(req: ControlRequest): Promise<ControlReply> {
    switch (req.cmd) {
      case 'status':
        return { ok: true, ...this.status() };
      case 'reload':
        try {
          const generation = await this.reload('control');
          return { ok: true, generation, ms: this.lastReload?.ms };
        } catch (e) {
          return { ok: false, error: (e as Error).message };
        }
      case 'upgrade':
        try {
          const r = await this.upgrade('control');
          return { ok: true, oldPid: process.pid, newPid: r.successor, ms: r.ms, manual: r.manual };
        } catch (e) {
          return { ok: false, error: (e as Error).message };
        }
      case 'stop':
        void this.stop(Boolean(req.fast), `stop requested${req.fast ? ' (fast)' : ''}`);
        return { ok: true, pid: process.pid };
      default:
        return { ok: false, error: `unknown command ${JSON.stringify((req as { cmd?: unknown }).cmd)}` };
    }
  }

  // ---- status ----

  private statusLine(): string {
    const gen = this.current;
    if (this.phase === 'stopping') return 'stopping';
    if (!gen) return this.phase === 'starting' ? 'starting' : 'no workers (SIGWINCH); HUP starts a new generation';
    const ready = gen.workers().filter((w) => w.state === 'ready').length;
    const tail = this.phase === 'reloading' ? '; reloading' : this.phase === 'upgrading' ? '; upgrading' : '';
    return `generation ${gen.id}: ${ready}/${gen.count} workers ready${tail}`;
  }

  private updateStatus(): void {
    if (this.phase === 'running' || this.phase === 'reloading') this.systemd.status(this.statusLine());
  }

  status(): Record<string, unknown> {
    const now = Date.now();
    return {
      name: this.cfg.name,
      version: VERSION,
      pid: process.pid,
      config: this.cfg.file,
      phase: this.phase,
      uptimeMs: now - this.startedAt,
      generation: this.current?.id ?? null,
      generations: this.generations.map((g) => ({
        id: g.id,
        state: g.state,
        count: g.count,
        workers: [...g.slots.values()]
          .sort((a, b) => a.slot - b.slot)
          .map((w) => ({
            slot: w.slot,
            pid: w.pid,
            state: w.state,
            restarts: w.restarts,
            uptimeMs: now - w.startedAt,
            status: w.status,
          })),
      })),
      listeners: this.listeners.map(describeListener),
      lastReload: this.lastReload,
      notifyDropped: this.receiver?.dropped,
      upgrade: {
        state: this.isSuccessor ? 'unconfirmed successor' : this.successor ? `successor ${this.successor.state}` : 'none',
        successorPid: this.successor?.pid,
        last: this.lastUpgrade,
      },
      statusLine: this.statusLine(),
      // lines a failing log sink (closed pipe, full disk, journald gone) dropped
      log: this.log.sinkStatus(),
    };
  }
}
