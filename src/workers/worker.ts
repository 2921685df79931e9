import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { WorkersConfig } from '../config/types';
import { workerArgv, workerEnv } from './command-line';
import type { WorkerExit } from './exit';
import { groupSize } from './process-group';

export type WorkerState = 'starting' | 'ready' | 'stopping' | 'exited';

/** How often a worker's process group is looked at once its first process has exited. */
const GROUP_POLL_MS = 50;

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
  private groupTimer: NodeJS.Timeout | null = null;

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
    let resolveExited!: (e: WorkerExit) => void;
    this.exited = new Promise((resolve) => (resolveExited = resolve));
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
      setImmediate(() => this.onExit({ code: null, signal: null, error }, resolveExited));
      return;
    }
    this.pid = this.child.pid ?? -1;
    this.child.once('error', (e) => {
      if (this.pid < 0) this.onExit({ code: null, signal: null, error: e.message }, resolveExited);
    });
    this.child.once('exit', (code, signal) => this.onExit({ code, signal }, resolveExited));
    this.child.once('spawn', () => this.emit('spawn'));
  }

  /**
   * The worker's own process has ended. It is done only once its process group is empty:
   * a child it left (ignoring stopSignal, say) may still hold the sockets and accept. A
   * crashed worker's leftovers get SIGKILL now; a stopped one's at the stop deadline, which
   * stays armed. Until then it stays in its generation, which therefore is not reported
   * stopped, nor the master, while any of it runs.
   */
  private onExit(e: WorkerExit, resolve: (e: WorkerExit) => void): void {
    if (this.leaderExit || this.state === 'exited') return;
    this.leaderExit = e;
    if (this.state === 'starting' || this.state === 'ready') this.state = 'stopping';
    if (this.pid > 0 && !this.stopRequested) this.signalGroup('SIGKILL');
    const since = Date.now();
    const check = () => {
      this.groupTimer = null;
      if (this.pid > 0 && groupSize(this.pid, since) > 0) {
        this.groupTimer = setTimeout(check, GROUP_POLL_MS);
        return;
      }
      this.finish(resolve);
    };
    check();
  }

  private finish(resolve: (e: WorkerExit) => void): void {
    const e = this.leaderExit!;
    this.state = 'exited';
    this.exitInfo = e;
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killTimer = null;
    resolve(e);
    this.emit('exit', e);
  }

  /** The worker sent READY=1 (or was spawned, for ready: spawn). */
  markReady(): boolean {
    if (this.state !== 'starting') return false;
    this.state = 'ready';
    this.readyAt = Date.now();
    return true;
  }

  /**
   * Sends `signal` to the worker's process group, then SIGKILL to the group after
   * `timeoutMs`. Repeated calls only ever shorten the deadline.
   */
  stop(signal: NodeJS.Signals, timeoutMs: number): Promise<WorkerExit> {
    if (this.state === 'exited') return this.exited;
    this.state = 'stopping';
    this.stopRequested = true;
    this.signalGroup(signal);
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

  /** Kills whatever is left of the worker's process group (its children after it died, say). */
  killGroup(): void {
    this.signalGroup('SIGKILL');
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
  }

  uptimeMs(): number {
    return Date.now() - this.startedAt;
  }
}
