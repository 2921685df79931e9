import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { pidfileTmp, removePidfile } from '../system/pidfile';
import { identify, parentPid, signalProcess, stillRunning, type ProcessId } from '../system/process';
import { unixSocketAnswers } from '../sockets/probe';
import { ProcessGroup, stopGroup } from '../system/process-group';
import { Channel } from './channel';
import type { PredecessorMessage, SuccessorMessage } from '../contract/upgrade-channel';
import { execSettingListenPid, listenFdsEnv, SD_LISTEN_FDS_START } from '../contract/listen-fds';
import { upgradeEnvVars, type ListenerSource } from '../contract/upgrade-env';
import type { SuccessorState } from '../contract/control';
import { IGNORE_MASTER_SIGNALS_SH } from '../contract/master-signals';
import { signalGuardEnv } from '../contract/signal-guard';

/**
 * How the successor is started: a throw-away sh backgrounds a second sh and exits, so the
 * successor is re-parented to PID 1 (or the nearest subreaper) before it is ever named
 * MAINPID: systemd does not supervise a main pid that is not its child properly (it SIGKILLs
 * it right after SIGTERM at stop). The second sh sets LISTEN_PID to its own pid, which
 * `exec` keeps for the successor. The background job's stdin is /dev/null, as POSIX says.
 * The master's signals are ignored first (a `systemctl kill` burst may still be going on; the
 * signal guard in the environment then covers the successor's own start).
 */
const DOUBLE_FORK = `${IGNORE_MASTER_SIGNALS_SH}inner=$1; shift; /bin/sh -c "$inner" "$@" &`;

export interface SuccessorSpec {
  argv: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** The sockets it gets at fd 3 onwards (see passedOn in sockets/listeners.ts). */
  fds: number[];
  names: string[];
  /** Where this master has each of `fds` from. */
  sources: ListenerSource[];
  nextGeneration: number;
}

const isPid = (n: unknown): n is number => Number.isInteger(n) && (n as number) > 0;
const isTicks = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0;

/**
 * One upgrade attempt as the predecessor's upgrade sees it: its state and the promises that
 * say how it goes. How it starts and speaks is the subclass's: Successor (a process), a fake
 * in the unit tests.
 */
export abstract class SuccessorHandle {
  state: SuccessorState = 'starting';
  /** Known once it said `hello`. */
  pid?: number;
  /** Where the successor's parent was when it was known to be re-parented. */
  reparentedTo?: number;
  /** The signal that killed the throw-away sh: it died before its trap, so no successor exists. */
  shKilledBy?: NodeJS.Signals;
  /**
   * Settles once the successor is ready (resolve) or the attempt failed (reject, with the
   * reason). It settles only after the constructor has returned (everything that fails it
   * comes later), so a caller that handles it at once never leaves a rejection unhandled.
   */
  readonly ready: Promise<void>;
  private settle!: { resolve: () => void; reject: (e: Error) => void };
  /** Resolves when the channel closes: the successor has exited (or closed it after `master`). */
  readonly closed: Promise<void>;
  protected gone!: () => void;
  /**
   * After confirm(): true once the successor says `master` (it has taken over control.sock),
   * false if the channel closes first (it died, or is a version that does not say it).
   */
  readonly tookOver: Promise<boolean>;
  protected tookOverWith!: (yes: boolean) => void;
  /**
   * Ready and not yet confirmed: resolves with the first reason it stopped deserving the hand-over
   * (a worker of it failed, it failed, it exited). What a soaking upgrade waits on.
   */
  readonly faulted: Promise<string>;
  private faultWith!: (reason: string) => void;

  constructor() {
    this.ready = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.faulted = new Promise((r) => (this.faultWith = r));
    this.closed = new Promise((r) => (this.gone = r));
    this.tookOver = new Promise((r) => (this.tookOverWith = r));
  }

  /** Whether the successor runs (its pid not yet another process's). */
  abstract running(): boolean;

  /** It is ready, re-parented to `parent`. */
  protected readyBeside(parent: number | undefined): void {
    this.reparentedTo = parent;
    this.state = 'ready';
    this.settle.resolve();
  }

  fail(reason: string): void {
    if (this.state !== 'starting' && this.state !== 'ready') return;
    if (this.state === 'ready') this.faultWith(reason);
    this.state = 'failed';
    this.settle.reject(new Error(reason));
  }

  /** It says a worker of its own failed (ready, unconfirmed). */
  protected workerFailed(reason: string): void {
    if (this.state === 'ready') this.faultWith(`its worker failed: ${reason}`);
  }

  confirm(_nextGeneration: number): void {
    this.state = 'confirmed';
  }

  /**
   * Rolls the successor back: asks it to stop its workers gracefully and exit; whatever is
   * left after `graceMs` is killed, and what it left behind removed, except the paths in
   * `ours`; resolves with what was removed, and the pids of its workers that could not be killed.
   */
  abstract abort(reason: string, stopSignal: NodeJS.Signals, graceMs: number, ours?: ReadonlySet<string>): Promise<{ removed: string[]; lingering: number[] }>;
}

/** How the predecessor starts its successor (passed in, as the pool's Launch is, so the upgrade runs in unit tests). */
export type LaunchSuccessor = (spec: SuccessorSpec) => SuccessorHandle;

export const launchSuccessor: LaunchSuccessor = (spec) => new Successor(spec);

/** The predecessor's handle on its successor: one upgrade attempt, a process it started. */
export class Successor extends SuccessorHandle {
  /** The successor as a process (pid and start time), never signalled once its pid is another's. */
  private id?: ProcessId;
  /** Its workers' process groups while they run, by the worker's pid: the predecessor's to stop if it dies. */
  private readonly workers = new Map<number, ProcessGroup>();
  /** What the successor said it made: removed here if it dies without removing them. */
  private readonly sockets = new Set<string>();
  private pidfile?: string;
  readonly startedAt = Date.now();
  private readonly sh: ChildProcess;
  private readonly channel: Channel<SuccessorMessage, PredecessorMessage>;
  /** The throw-away sh has exited: the successor is no longer anybody's child but PID 1's. */
  readonly detached: Promise<void>;

  constructor(spec: SuccessorSpec) {
    super();
    const channelFd = SD_LISTEN_FDS_START + spec.fds.length;
    const env: NodeJS.ProcessEnv = {
      ...spec.env,
      ...listenFdsEnv(spec.fds, spec.names),
      ...upgradeEnvVars(channelFd, spec.nextGeneration, spec.sources),
      ...signalGuardEnv(spec.env),
    };
    const inner = execSettingListenPid(spec.fds.length > 0);
    this.sh = spawn('/bin/sh', ['-c', DOUBLE_FORK, 'baton-upgrade', inner, ...spec.argv], {
      cwd: spec.cwd,
      env,
      stdio: ['ignore', 'inherit', 'inherit', ...spec.fds, 'pipe'],
    });
    this.detached = new Promise((resolve) => {
      this.sh.once('exit', (_code, signal) => {
        if (signal) {
          this.shKilledBy = signal;
          this.fail(`the sh that starts the successor was killed by ${signal} before it could`);
        }
        resolve();
      });
      this.sh.once('error', (e) => {
        this.fail(`cannot start the successor: ${e.message}`);
        resolve();
      });
    });
    this.channel = new Channel<SuccessorMessage, PredecessorMessage>(
      this.sh.stdio[channelFd] as net.Socket,
      (m) => this.onMessage(m),
      (error) => {
        const why = error ? ` (the channel: ${error.message})` : '';
        // after the sh's exit, whose signal (if it was killed) says more than this
        void this.detached.then(() =>
          this.fail(this.pid ? `the successor (pid ${this.pid}) exited before it was ready${why}` : `the successor exited before it started${why}`),
        );
        // its workers now outlive it: what is in their groups is learnt while their leaders pin them
        for (const g of this.workers.values()) g.members();
        this.tookOverWith(false);
        this.gone();
      },
    );
  }

  private onMessage(m: SuccessorMessage): void {
    if (m.t === 'hello' && isPid(m.pid)) {
      this.pid = m.pid;
      // an older successor says no start time: looked up now, while it is still there to say hello
      this.id = isTicks(m.startTicks) ? { pid: m.pid, startTicks: m.startTicks } : identify(m.pid);
    } else if (m.t === 'worker' && isPid(m.pid)) {
      const id = isTicks(m.startTicks) ? { pid: m.pid, startTicks: m.startTicks } : this.childNow(m.pid);
      if (id) this.workers.set(m.pid, new ProcessGroup(id));
    } else if (m.t === 'worker-gone') this.workers.delete(m.pid);
    else if (m.t === 'files') {
      m.sockets.forEach((p) => typeof p === 'string' && this.sockets.add(p));
      if (typeof m.pidfile === 'string') this.pidfile = m.pidfile;
    }
    else if (m.t === 'failed') this.fail(`the successor (pid ${this.pid}) failed: ${m.reason}`);
    else if (m.t === 'worker-failed' && typeof m.reason === 'string') this.workerFailed(m.reason);
    else if (m.t === 'master' && this.state === 'confirmed') this.tookOverWith(true);
    else if (m.t === 'ready' && this.state === 'starting') {
      // ready only counts once the successor has left the throw-away sh behind
      void this.detached.then(() => {
        if (this.state !== 'starting' || !this.pid) return;
        this.readyBeside(parentPid(this.pid));
      });
    }
  }

  /** A worker an older successor reported without its start time: its child now, or nothing of ours. */
  private childNow(pid: number): ProcessId | undefined {
    const id = identify(pid);
    return id && this.pid !== undefined && parentPid(pid) === this.pid ? id : undefined;
  }

  running(): boolean {
    return this.id !== undefined && stillRunning(this.id);
  }

  override confirm(nextGeneration: number): void {
    super.confirm(nextGeneration);
    void this.channel.send({ t: 'confirm', nextGeneration });
  }

  /**
   * Rolls the successor back: asks it to stop its workers gracefully and exit; whatever is
   * left after `graceMs` (the successor, its workers' process groups) is SIGKILLed. Then
   * what a dead successor left behind is removed, except the paths in `ours`; resolves with
   * what was removed, and the pids of its workers' groups that could not be killed.
   */
  async abort(reason: string, stopSignal: NodeJS.Signals, graceMs: number, ours: ReadonlySet<string> = new Set()): Promise<{ removed: string[]; lingering: number[] }> {
    this.fail(reason);
    void this.channel.send({ t: 'abort', reason });
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
    if ((await Promise.race([this.closed.then(() => 'closed' as const), timer])) === 'timeout' && this.id) signalProcess(this.id, 'SIGKILL');
    // a SIGKILLed successor cannot stop its workers: they are ours to stop (those it has not said are gone)
    const lingering = (await Promise.all([...this.workers.values()].map((g) => stopGroup(g, stopSignal, graceMs)))).flat();
    this.channel.close();
    return { removed: await this.removeLeftovers(ours), lingering };
  }

  /** Once the successor is gone: its socket files nobody answers on, its pidfile and the pidfile's temporary file. */
  private async removeLeftovers(ours: ReadonlySet<string>): Promise<string[]> {
    const pid = this.pid;
    if (!pid) return [];
    for (const until = Date.now() + 5000; this.running(); await new Promise((r) => setTimeout(r, 20))) {
      if (Date.now() > until) return [];
    }
    const removed: string[] = [];
    const rm = (p: string) => {
      try {
        fs.unlinkSync(p);
        removed.push(p);
      } catch {
        /* gone already, or not ours to remove */
      }
    };
    for (const p of this.sockets) {
      if (ours.has(p)) continue;
      try {
        if (!fs.lstatSync(p).isSocket() || (await unixSocketAnswers(p))) continue;
      } catch {
        continue;
      }
      rm(p);
    }
    if (this.pidfile) {
      rm(pidfileTmp(this.pidfile, pid));
      try {
        if (fs.existsSync(this.pidfile)) {
          removePidfile(this.pidfile, pid);
          if (!fs.existsSync(this.pidfile)) removed.push(this.pidfile);
        }
      } catch {
        /* not ours to remove */
      }
    }
    return removed;
  }
}
