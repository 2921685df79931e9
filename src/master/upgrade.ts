import fs from 'node:fs';
import type { Config } from '../config/types';
import type { Logger } from '../log/logger';
import { passedOn, type Listener } from '../sockets/listeners';
import type { Clock, Timer } from '../system/clock';
import { writePidfile } from '../system/pidfile';
import type { SystemdNotifier } from '../systemd/notifier';
import type { LaunchSuccessor, SuccessorHandle } from '../upgrade/successor';
import { killedByMasterSignal } from '../contract/master-signals';
import type { ControlReply, LastUpgrade } from '../contract/control';
import type { MasterEvent, Reply } from './events';
import { intoSoak } from './soak';

export interface UpgradeContext {
  log: Logger;
  clock: Clock;
  run(fn: () => void): void;
  post(e: MasterEvent): void;
  /** How this master was started, read afresh from disk by the successor. */
  program: string[];
  args: string[];
  cwd: string;
  /** The successor's: baseEnv plus NOTIFY_SOCKET and WATCHDOG_USEC, to speak to systemd once confirmed. */
  env: NodeJS.ProcessEnv;
  /** Starts the successor (launchSuccessor; a fake in the unit tests). */
  launch: LaunchSuccessor;
  /** Whose main process the successor becomes at the hand-over. */
  systemd: Pick<SystemdNotifier, 'send' | 'stopWatchdog' | 'muted'>;
}

/**
 * USR2, the predecessor's side (docs/contract.md, "Binary upgrade"). Steps, each an event:
 * the pidfile renamed to .oldbin, the successor started with the code on disk (it checks the
 * config before it touches anything); then `successor-ready` or `upgrade-failed`. The master
 * then hands over (`took-over` once the successor answers on control.sock) or, in manual
 * mode, keeps it beside itself (`successor-gone` if it exits). Every failure rolls back.
 */
export class Upgrade {
  readonly replies: Reply[] = [];
  successor?: SuccessorHandle;
  /** MAINPID= and the confirmation have gone out: there is no rolling back any more. */
  handedOver = false;
  /** Manual mode: the successor is ready beside us (side-by-side). */
  beside = false;
  private renamed = false;
  private timeout?: Timer;
  /** When the soak ends (ms on the master's clock); undefined when not soaking. */
  private soakUntil?: number;
  private over = false;
  private startedAgain = false;

  constructor(
    private readonly ctx: UpgradeContext,
    readonly startedAt: number,
    private readonly cfg: Config,
    private readonly listeners: Listener[],
    private readonly nextGeneration: number,
    source: string,
  ) {
    ctx.log.info(`${source}: binary upgrade: starting the code on disk with ${cfg.file}`, { kind: 'upgrade-started', generation: nextGeneration });
    try {
      fs.renameSync(cfg.pidfile, this.oldbin);
      this.renamed = true;
    } catch (e) {
      ctx.post({ kind: 'upgrade-failed', reason: `cannot rename the pidfile: ${(e as Error).message}` });
      return;
    }
    this.startSuccessor();
  }

  get oldbin(): string {
    return `${this.cfg.pidfile}.oldbin`;
  }

  private startSuccessor(): void {
    let s: SuccessorHandle;
    try {
      s = this.ctx.launch({
        argv: [...this.ctx.program, ...this.ctx.args],
        cwd: this.ctx.cwd,
        env: this.ctx.env,
        ...passedOn(this.listeners),
        nextGeneration: this.nextGeneration,
      });
    } catch (e) {
      return this.ctx.post({ kind: 'upgrade-failed', reason: `cannot start the successor: ${(e as Error).message}` });
    }
    this.successor = s;
    const limit = this.cfg.upgrade.timeoutMs;
    this.timeout?.cancel();
    this.timeout = this.ctx.clock.after(limit, () => s.state === 'starting' && s.fail(`the successor was not ready within ${limit} ms`));
    s.ready.then(
      () => this.ctx.run(() => !this.over && this.ctx.post({ kind: 'successor-ready' })),
      (e: Error) =>
        this.ctx.run(() => {
          if (this.over) return;
          // Killed before its trap by a `systemctl kill` burst still going on: no successor
          // exists yet, so once more (the second sh and the successor are guarded).
          if (killedByMasterSignal(s.shKilledBy) && !this.startedAgain) {
            this.startedAgain = true;
            this.ctx.log.warn(`${e.message} (a late signal burst): starting it again`);
            return this.startSuccessor();
          }
          this.ctx.post({ kind: 'upgrade-failed', reason: e.message });
        }),
    );
  }

  get manual(): boolean {
    return this.cfg.upgrade.mode === 'manual';
  }

  /** Manual mode: the successor stays beside us; its exit is reported. */
  keepBeside(): void {
    this.beside = true;
    this.timeout?.cancel();
    const pid = this.successor!.pid;
    this.ctx.log.info(
      `manual upgrade: both masters serve. To finish: WINCH, then QUIT to this master (pid ${process.pid}). ` +
        `To roll back: HUP to this master, QUIT to the successor (pid ${pid})`,
    );
    void this.successor!.closed.then(() => this.ctx.run(() => !this.over && this.ctx.post({ kind: 'successor-gone' })));
  }

  /**
   * Auto mode with reload.soakMs: the ready successor serves beside us, unconfirmed, for `ms`
   * (soak-over then hands over); a worker of it that fails meanwhile, or its own failure or
   * exit, rolls the upgrade back (upgrade-failed). MAINPID= and the pidfile have not moved.
   */
  soak(ms: number): void {
    const s = this.successor!;
    this.timeout?.cancel();
    this.soakUntil = this.ctx.clock.now() + ms;
    this.timeout = this.ctx.clock.after(ms, () => !this.over && this.ctx.post({ kind: 'soak-over', id: this.nextGeneration }));
    void s.faulted.then((reason) =>
      this.ctx.run(() => {
        if (this.over || this.handedOver) return;
        this.ctx.post({ kind: 'upgrade-failed', reason: `the successor (pid ${s.pid}) in its soak: ${intoSoak(reason, ms, this.soakUntil!, this.ctx.clock.now())}`, reverted: true });
      }),
    );
    this.ctx.log.info(`successor pid ${s.pid} ready: it serves beside this master for ${ms} ms (reload.soakMs) before the hand-over`);
  }

  /** What status shows of the soak under way, if any: the successor's first generation, and when. */
  soakStatus(): { of: 'upgrade'; generation: number; until: number } | undefined {
    return this.soakUntil === undefined || this.over || this.handedOver ? undefined : { of: 'upgrade', generation: this.nextGeneration, until: this.soakUntil };
  }

  /** Since USR2, on the master's clock. */
  get ms(): number {
    return this.ctx.clock.now() - this.startedAt;
  }

  /** What `status` shows of this upgrade once it is over. */
  outcome(ok: boolean, error?: string, reverted = false): LastUpgrade {
    return { at: new Date().toISOString(), ok, successor: this.successor?.pid, ...(error === undefined ? {} : { error }), ...(reverted ? { reverted } : {}), ms: this.ms };
  }

  /** Answers every `baton upgrade` waiting for this one. */
  answer(reply: ControlReply): void {
    this.replies.splice(0).forEach((r) => r(reply));
  }

  /**
   * Hands over: systemd gets the successor as its main pid, the successor its confirmation
   * (it goes on numbering generations from `nextGeneration`), and the socket files of
   * `listeners` become its own; `took-over` once it owns control.sock, `upgrade-failed` if it
   * dies first.
   */
  handOver(nextGeneration: number, listeners: Listener[]): void {
    const s = this.successor!;
    // systemd reads notifications before SIGCHLD, so MAINPID= lands before our exit does
    this.ctx.systemd.send({ MAINPID: s.pid!, STATUS: `handing over to pid ${s.pid}` });
    this.timeout?.cancel();
    this.handedOver = true;
    s.confirm(nextGeneration);
    // no longer systemd's main process: it would refuse our STOPPING=1/STATUS= (NotifyAccess=main)
    this.ctx.systemd.muted = true;
    this.ctx.systemd.stopWatchdog();
    for (const l of listeners) l.ownedPath = undefined;
    // alive but silent (stopped, its loop blocked): we are no longer the main process, so we go
    const limit = this.cfg.upgrade.timeoutMs;
    this.timeout = this.ctx.clock.after(
      limit,
      () => !this.over && this.ctx.post({ kind: 'upgrade-failed', reason: `the successor (pid ${s.pid}) did not take over control.sock within ${limit} ms of its confirmation` }),
    );
    void s.tookOver.then((ok) =>
      this.ctx.run(() => {
        if (this.over) return;
        // an older build's successor closes the channel without saying `master`: alive, it took over
        if (ok || s.running()) this.ctx.post({ kind: 'took-over' });
        else this.ctx.post({ kind: 'upgrade-failed', reason: `the successor (pid ${s.pid}) exited right after it was confirmed` });
      }),
    );
  }

  /** The successor took over: `baton upgrade` answered; returns the outcome. */
  done(): LastUpgrade {
    const outcome = this.outcome(true);
    const pid = this.successor!.pid!;
    this.ctx.log.info(`upgrade done: master pid ${process.pid} -> ${pid} in ${this.ms} ms; this master now drains and exits`, { kind: 'upgrade-done', successor: pid });
    this.answer({ ok: true, oldPid: process.pid, newPid: pid, ms: this.ms, manual: false });
    this.end();
    return outcome;
  }

  /** Failed once handed over: no going back, this master leaves all the same; returns the outcome. */
  lost(reason: string): LastUpgrade {
    const outcome = this.outcome(false, reason);
    this.answer({ ok: false, error: `upgrade failed: ${reason}` });
    this.end();
    this.ctx.log.error(`${reason}: this master was no longer the main process; it drains and exits`);
    return outcome;
  }

  /** Done, one way or the other: later reports of this upgrade are stale. */
  end(): void {
    this.over = true;
    this.timeout?.cancel();
  }

  /**
   * Rolls back: `baton upgrade` answered as failed, the successor (if any) stopped and what it
   * left removed, except `ours`; the pidfile gets its name back. Returns the outcome.
   */
  rollBack(reason: string, ours: ReadonlySet<string>, reverted = false): LastUpgrade {
    const outcome = this.outcome(false, reason, reverted);
    this.end();
    const s = this.successor;
    if (s) this.abort(s, reason, ours);
    if (this.renamed) this.restorePidfile();
    // last: the answer can reach the client within this call (a socket write that succeeds at
    // once), and a script reading the pidfile then must find it
    this.answer({ ok: false, error: `upgrade ${reverted ? 'rolled back' : 'failed'}: ${reason}` });
    return outcome;
  }

  private abort(s: SuccessorHandle, reason: string, ours: ReadonlySet<string>): void {
    const wc = this.cfg.workers;
    s.abort(reason, wc.stopSignal, wc.stopTimeoutMs + 2000, ours).then(
      ({ removed, lingering }) =>
        this.ctx.run(() => {
          if (lingering.length) this.ctx.log.error(`the successor's workers: pid(s) ${lingering.join(', ')} still running after SIGKILL (another uid, or stuck in the kernel)`);
          if (removed.length) this.ctx.log.info(`removed what the successor (pid ${s.pid}) left behind: ${removed.join(', ')}`);
        }),
      (e: Error) => this.ctx.run(() => this.ctx.log.error(`rolling back the successor (pid ${s.pid}) failed: ${e.message}`)),
    );
  }

  private restorePidfile(): void {
    this.renamed = false;
    try {
      fs.renameSync(this.oldbin, this.cfg.pidfile);
      return;
    } catch (e) {
      this.ctx.log.warn(`cannot rename ${this.oldbin} back: ${(e as Error).message}; writing the pidfile anew`);
    }
    try {
      writePidfile(this.cfg.pidfile);
    } catch (e) {
      this.ctx.log.error(`${(e as Error).message}: this master serves on without a pidfile`);
    }
  }
}
