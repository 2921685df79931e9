import { spawn, type ChildProcess } from 'node:child_process';
import { KILL_GRACE_MS, ProcessGroup, whenEmpty } from '../system/process-group';
import { identify } from '../system/process';
import type { WorkerExit } from './exit';
import { GATE_OPEN } from '../config/worker-command';

/** What a worker process is started with: the program, its environment and its sockets (fd 3, 4, ...). */
export interface LaunchSpec {
  argv: string[];
  cwd: string;
  env: Record<string, string>;
  fds: number[];
  /**
   * Its stdin is the start gate (workerArgv's `gated` shim): the program runs only once
   * openGate() is called, and never if this process dies first (see GenerationContext.started).
   */
  gated?: boolean;
}

/** What a worker process tells its pool. Each is called at most once, except onKillTimeout. */
export interface WorkerProcessEvents {
  onSpawn(): void;
  /** The process and its whole process group are gone (or given up on: `stuck`). */
  onExit(e: WorkerExit): void;
  onKillTimeout(): void;
  /** Still running KILL_GRACE_MS after SIGKILL: given up on; onExit follows. */
  onLingering(pids: number[]): void;
}

/** The pool's handle on one worker process; `stop` may be called any number of times. */
export interface WorkerProcess {
  /** -1 when it could not be started (onExit says why). */
  readonly pid: number;
  /** Sends `signal` once to the process group, SIGKILL at the deadline; a later call only brings the deadline forward, or is SIGKILL now. */
  stop(signal: NodeJS.Signals, timeoutMs: number): void;
  /** Lets a gated worker's program start (LaunchSpec.gated); nothing otherwise. */
  openGate?(): void;
}

export type Launch = (spec: LaunchSpec, events: WorkerProcessEvents) => WorkerProcess;

/** The real thing: a child process leading its own process group. */
export const launchWorker: Launch = (spec, events) => new GroupLeader(spec, events);

class GroupLeader implements WorkerProcess {
  readonly pid: number;
  private readonly child?: ChildProcess;
  /** Its process group, which outlives the worker while a child of it is left. */
  private group?: ProcessGroup;
  private done = false;
  private stopRequested = false;
  private stopSignalSent = false;
  private killDeadline?: number;
  private killTimer: NodeJS.Timeout | null = null;
  /** Armed by the first SIGKILL: what is still running when it fires is given up on. */
  private graceTimer: NodeJS.Timeout | null = null;
  /** How the process itself ended; its process group may outlive it. */
  private leaderExit?: WorkerExit;
  /** Ends the current wait for the process group to empty. */
  private groupWatch: AbortController | null = null;

  constructor(
    spec: LaunchSpec,
    private readonly events: WorkerProcessEvents,
  ) {
    const [file, ...argv] = spec.argv;
    try {
      this.child = spawn(file, argv, {
        cwd: spec.cwd,
        env: spec.env,
        stdio: [spec.gated ? 'pipe' : 'ignore', 'inherit', 'inherit', ...spec.fds],
        // Its own process group: a terminal's ^C reaches only the master, which decides, and
        // everything the worker starts can be signalled, and waited for, with it.
        detached: true,
      });
    } catch (e) {
      // spawn() throws for what `check` refuses (E2BIG, a NUL byte): reported as an exit
      this.pid = -1;
      const error = (e as Error).message;
      setImmediate(() => this.onLeaderExit({ code: null, signal: null, error }));
      return;
    }
    this.pid = this.child.pid ?? -1;
    // our child, not reaped before this returns: its pid cannot belong to anyone else yet
    const leader = this.pid > 0 ? identify(this.pid) : undefined;
    if (leader) this.group = new ProcessGroup(leader);
    this.child.once('error', (e) => {
      if (this.pid < 0) this.onLeaderExit({ code: null, signal: null, error: e.message });
    });
    this.child.once('exit', (code, signal) => this.onLeaderExit({ code, signal }));
    this.child.once('spawn', () => events.onSpawn());
  }

  /**
   * The worker's own process has ended. It is done only once its process group is empty: a
   * child it left (ignoring stopSignal, say) may still hold the sockets and accept. A crashed
   * worker's leftovers get SIGKILL now; a stopped one's at the stop deadline, which stays armed.
   */
  private onLeaderExit(e: WorkerExit): void {
    if (this.leaderExit || this.done) return;
    this.leaderExit = e;
    if (!this.group) return this.finish(e);
    this.group.leaderReaped();
    if (!this.stopRequested) this.signalGroup('SIGKILL');
    if (!this.groupWatch) this.watchGroup();
  }

  /** (Re)starts looking at the process group until it is empty, from short pauses again. */
  private watchGroup(): void {
    this.groupWatch?.abort();
    const watch = (this.groupWatch = new AbortController());
    void whenEmpty(this.group!, watch.signal).then((empty) => empty && this.finish(this.leaderExit!));
  }

  /** KILL_GRACE_MS after SIGKILL something still runs: we cannot kill it (see KILL_GRACE_MS). */
  private giveUp(): void {
    this.graceTimer = null;
    if (this.done) return;
    const left = this.group?.members() ?? [];
    if (!this.leaderExit && !left.includes(this.pid)) left.unshift(this.pid);
    this.events.onLingering(left);
    this.finish(this.leaderExit ?? { code: null, signal: null, stuck: true });
  }

  private finish(e: WorkerExit): void {
    if (this.done) return;
    this.done = true;
    if (this.killTimer) clearTimeout(this.killTimer);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.killTimer = this.graceTimer = null;
    this.groupWatch?.abort();
    this.groupWatch = null;
    this.events.onExit(e);
  }

  openGate(): void {
    const gate = this.child?.stdin;
    if (!gate || gate.destroyed) return;
    gate.on('error', () => undefined); // gone already: its exit is reported as any other
    gate.end(GATE_OPEN);
  }

  stop(signal: NodeJS.Signals, timeoutMs: number): void {
    if (this.done) return;
    this.stopRequested = true;
    // Sent once: a second stop signal means "exit now, drop what is in flight" to many servers
    // (baton/worker, gunicorn, Node apps that exit on a repeated ^C).
    if (signal === 'SIGKILL' || !this.stopSignalSent) this.signalGroup(signal);
    if (signal === 'SIGKILL') return;
    this.stopSignalSent = true;
    const deadline = Date.now() + timeoutMs;
    if (this.killDeadline !== undefined && deadline >= this.killDeadline) return;
    this.killDeadline = deadline;
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killTimer = setTimeout(() => {
      this.events.onKillTimeout();
      this.signalGroup('SIGKILL');
    }, timeoutMs);
  }

  private signalGroup(signal: NodeJS.Signals): void {
    // once the group is empty its id may be reused: never signal it again
    if (!this.group || this.done) return;
    if (!this.group.signal(signal)) {
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
}
