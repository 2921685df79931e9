import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { WorkersConfig } from '../config/types';
import type { WorkerExit } from './exit';

export type WorkerState = 'starting' | 'ready' | 'stopping' | 'exited';

/**
 * Runs the worker's program through sh for two things Node's spawn cannot do:
 * - LISTEN_PID must be the worker's own pid, known only after fork; `exec` keeps the pid.
 * - libuv resets every signal to its default in the child, so the SIG_IGN for the master's
 *   signals (USR2/HUP/WINCH, which `systemctl kill` sends to every process of the unit) is
 *   set here and survives exec for programs that do not change it.
 */
const SHIM = 'trap "" USR2 HUP WINCH; LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"';

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
  private readonly child: ChildProcess;
  private killTimer: NodeJS.Timeout | null = null;

  constructor(spec: SpawnSpec) {
    super();
    this.slot = spec.slot;
    this.generation = spec.generation;
    this.restarts = spec.restarts;
    const env: NodeJS.ProcessEnv = {
      ...spec.baseEnv,
      ...spec.config.env,
      NOTIFY_SOCKET: spec.notifySocket,
      BATON_WORKER_ID: String(spec.slot),
      BATON_GENERATION: String(spec.generation),
    };
    if (spec.fds.length) {
      env.LISTEN_FDS = String(spec.fds.length);
      env.LISTEN_FDNAMES = spec.names.join(':');
    }
    const [cmd, ...args] = spec.config.command;
    let startError: string | undefined;
    this.child = spawn('/bin/sh', ['-c', SHIM, cmd, ...args], {
      cwd: spec.config.cwd,
      env,
      stdio: ['ignore', 'inherit', 'inherit', ...spec.fds],
      // Its own process group: a terminal's ^C reaches only the master, which decides, and
      // the worker's own children can be signalled with it.
      detached: true,
    });
    this.pid = this.child.pid ?? -1;
    this.exited = new Promise((resolve) => {
      this.child.once('error', (e) => {
        startError = e.message;
        if (this.pid < 0) this.onExit({ code: null, signal: null, error: startError }, resolve);
      });
      this.child.once('exit', (code, signal) => this.onExit({ code, signal }, resolve));
      this.child.once('spawn', () => this.emit('spawn'));
    });
  }

  private onExit(e: WorkerExit, resolve: (e: WorkerExit) => void): void {
    if (this.state === 'exited') return;
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
    if (signal !== 'SIGKILL') {
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
    if (this.pid <= 0) return;
    try {
      process.kill(-this.pid, signal);
    } catch {
      // the group is gone; the leader alone may still be a zombie we have not reaped
      try {
        if (this.state !== 'exited') process.kill(this.pid, signal);
      } catch {
        /* already gone */
      }
    }
  }

  uptimeMs(): number {
    return Date.now() - this.startedAt;
  }
}
