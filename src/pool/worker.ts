import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { WorkersConfig } from '../config/types';
import { workerArgv, workerEnv } from './command-line';
import type { WorkerExit } from './exit';
import { groupMembers, KILL_GRACE_MS, whenEmpty } from '../system/process-group';

export type WorkerState = 'starting' | 'ready' | 'stopping' | 'exited';

export interface SpawnSpec {
  slot: number;
  generation: number;
  config: WorkersConfig;
  /** Sockets in the order they are given: fd 3, 4, ... */
  fds: number[];
  names: string[];
  notifySocket: string;
  baseEnv: NodeJS.ProcessEnv;
  restarts: number;
}

export class Worker extends EventEmitter {
  readonly slot: number;
  readonly generation: number;
  readonly pid: number;
  readonly startedAt = Date.now();
  readonly restarts: number;
  state: WorkerState = 'starting';
  readyAt?: number;
  /** STATUS= the worker last sent. */
  status?: string;
  lastWatchdog?: number;
  exitInfo?: WorkerExit;
  /** The master asked it to stop, so its exit is no crash. */
  stopRequested = false;
  readonly exited: Promise<WorkerExit>;
  private readonly child?: ChildProcess;
  private killTimer: NodeJS.Timeout | null = null;
  private killDeadline?: number;
  /** How the worker's own process ended; its process group may outlive it. */
  private leaderExit?: WorkerExit;
  private resolveExited!: (e: WorkerExit) => void;
  /** Ends the current wait for the process group to empty. */
  private groupWatch: AbortController | null = null;
  /** Armed by the first SIGKILL: what is still running when it fires is given up on. */
  private graceTimer: NodeJS.Timeout | null = null;

  constructor(spec: SpawnSpec) {
    super();
    this.slot = spec.slot;
    this.generation = spec.generation;
    this.restarts = spec.restarts;
    const withSockets = spec.fds.length > 0;
    const env = workerEnv(spec.baseEnv, spec.config, {
      NOTIFY_SOCKET: spec.notifySocket,
      BATON_WORKER_ID: String(spec.slot),
      BATON_GENERATION: String(spec.generation),
      ...(withSockets ? { LISTEN_FDS: String(spec.fds.length), LISTEN_FDNAMES: spec.names.join(':') } : {}),
    });
    const [file, ...argv] = workerArgv(spec.config, withSockets);
    this.exited = new Promise((resolve) => (this.resolveExited = resolve));
    try {
      this.child = spawn(file, argv, {
        cwd: spec.config.cwd,
        env,
        stdio: ['ignore', 'inherit', 'inherit', ...spec.fds],
        // Its own process group: a terminal's ^C reaches only the master, which decides, and
        // everything the worker starts can be signalled, and waited for, with it.
        detached: true,
      });
    } catch (e) {
      // spawn() throws for what `check` refuses (E2BIG, a NUL byte); still a worker that
      // could not be started, reported once the caller listens, never a thrown constructor
      this.pid = -1;
      const error = (e as Error).message;
      setImmediate(() => this.onExit({ code: null, signal: null, error }));
      return;
    }
    this.pid = this.child.pid ?? -1;
    this.child.once('error', (e) => {
      if (this.pid < 0) this.onExit({ code: null, signal: null, error: e.message });
    });
    this.child.once('exit', (code, signal) => this.onExit({ code, signal }));
    this.child.once('spawn', () => this.emit('spawn'));
  }

  /**
   * The worker's own process has ended. It is done only once its process group is empty:
   * a child it left (ignoring stopSignal, say) may still hold the sockets and accept. A
   * crashed worker's leftovers get SIGKILL now; a stopped one's at the stop deadline, which
   * stays armed. Until then it stays in its generation, which therefore is not reported
   * stopped, nor the master, while any of it runs (but see giveUp()).
   */
  private onExit(e: WorkerExit): void {
    if (this.leaderExit || this.state === 'exited') return;
    this.leaderExit = e;
    if (this.state === 'starting' || this.state === 'ready') this.state = 'stopping';
    if (this.pid <= 0) return this.finish(e);
    if (!this.stopRequested) this.signalGroup('SIGKILL');
    if (!this.groupWatch) this.watchGroup();
  }

  /** (Re)starts looking at the process group until it is empty, from short pauses again. */
  private watchGroup(): void {
    this.groupWatch?.abort();
    const watch = (this.groupWatch = new AbortController());
    void whenEmpty(this.pid, watch.signal).then((empty) => empty && this.finish(this.leaderExit!));
  }

  /**
   * KILL_GRACE_MS after SIGKILL, something of the worker still runs: it cannot be killed by
   * us (see KILL_GRACE_MS). It is named, and the worker counts as gone so that its slot can
   * restart and a drain or stop can end.
   */
  private giveUp(): void {
    this.graceTimer = null;
    if (this.state === 'exited') return;
    const left = groupMembers(this.pid);
    if (!this.leaderExit && !left.includes(this.pid)) left.unshift(this.pid);
    this.emit('lingering', left);
    this.finish(this.leaderExit ?? { code: null, signal: null, stuck: true });
  }

  private finish(e: WorkerExit): void {
    if (this.state === 'exited') return;
    this.state = 'exited';
    this.exitInfo = e;
    if (this.killTimer) clearTimeout(this.killTimer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.killTimer = this.graceTimer = null;
    this.groupWatch?.abort();
    this.groupWatch = null;
    this.resolveExited(e);
    this.emit('exit', e);
  }

  /** The worker sent READY=1 (or was spawned, for ready: spawn). */
  markReady(): boolean {
    if (this.state !== 'starting') return false;
    this.state = 'ready';
    this.readyAt = Date.now();
    return true;
  }

  private stopSignalSent = false;

  /**
   * Sends `signal` to the worker's process group, then SIGKILL to the group after
   * `timeoutMs`. Repeated calls only ever shorten the deadline.
   */
  stop(signal: NodeJS.Signals, timeoutMs: number): Promise<WorkerExit> {
    if (this.state === 'exited') return this.exited;
    this.state = 'stopping';
    this.stopRequested = true;
    // Sent once: a second stop signal means "exit now, drop what is in flight" to many servers
    // (baton/worker, gunicorn, Node apps that exit on a repeated ^C). A later stop() only
    // brings the deadline forward, or is SIGKILL.
    if (signal === 'SIGKILL' || !this.stopSignalSent) this.signalGroup(signal);
    if (signal !== 'SIGKILL') this.stopSignalSent = true;
    const deadline = Date.now() + timeoutMs;
    if (signal !== 'SIGKILL' && (this.killDeadline === undefined || deadline < this.killDeadline)) {
      this.killDeadline = deadline;
      if (this.killTimer) clearTimeout(this.killTimer);
      this.killTimer = setTimeout(() => {
        this.emit('kill-timeout');
        this.signalGroup('SIGKILL');
      }, timeoutMs);
    }
    return this.exited;
  }

  signalGroup(signal: NodeJS.Signals): void {
    // once the group is empty its id may be reused: never signal it again
    if (this.pid <= 0 || this.state === 'exited') return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // the group is gone; the leader alone may still be a zombie we have not reaped
      try {
        if (!this.leaderExit) process.kill(this.pid, signal);
      } catch {
        /* already gone */
      }
    }
    if (signal === 'SIGKILL' && !this.graceTimer) {
      this.graceTimer = setTimeout(() => this.giveUp(), KILL_GRACE_MS);
      // the group usually empties at once now: look again soon
      if (this.leaderExit) this.watchGroup();
    }
  }

  uptimeMs(): number {
    return Date.now() - this.startedAt;
  }
}
