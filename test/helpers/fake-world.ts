// The outside world of the pool and the master, faked for unit tests: a clock whose time moves
// only when the test says so, a Launch whose worker processes are objects the test makes
// spawn and exit, a LaunchSuccessor whose successor masters the test makes ready, fail,
// take over and exit, workers' memory as the test sets it, and a random source that returns
// what the test lists. No process is started.
import type { Clock, Timer } from '../../src/system/clock';
import type { WorkerExit } from '../../src/pool/exit';
import type { Launch, LaunchSpec, WorkerProcess, WorkerProcessEvents } from '../../src/pool/worker-process';
import type { MemoryReading, SampleMemory } from '../../src/pool/recycle';
import type { Sampler } from '../../src/master/status';
import { SuccessorHandle, type LaunchSuccessor, type SuccessorSpec } from '../../src/upgrade/successor';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  every?: number;
  cancelled: boolean;
}

/** Manual time: advance() runs every timer that falls due, in order, at its own time. */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private pending: Pending[] = [];

  constructor(start = 1_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  after(ms: number, fn: () => void): Timer {
    return this.add({ at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false });
  }

  every(ms: number, fn: () => void): Timer {
    return this.add({ at: this.t + ms, seq: this.seq++, fn, every: ms, cancelled: false });
  }

  private add(p: Pending): Timer {
    this.pending.push(p);
    return { cancel: () => void (p.cancelled = true) };
  }

  /** Timers not cancelled nor run yet. */
  get armed(): number {
    return this.pending.filter((p) => !p.cancelled).length;
  }

  /** Moves time on by `ms` (0 runs what is due now), running each timer when its time comes. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      this.pending = this.pending.filter((p) => !p.cancelled);
      const due = this.pending.filter((p) => p.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.t = Math.max(this.t, due.at);
      if (due.every) due.at += due.every;
      else due.cancelled = true;
      due.fn();
    }
    this.t = end;
  }
}

/** One fake worker process: what it was started with, the stop requests it got, and its events to fire. */
export class FakeWorker implements WorkerProcess {
  readonly stops: Array<[NodeJS.Signals, number]> = [];
  exited = false;

  constructor(
    readonly pid: number,
    readonly spec: LaunchSpec,
    private readonly events: WorkerProcessEvents,
  ) {}

  stop(signal: NodeJS.Signals, timeoutMs: number): void {
    this.stops.push([signal, timeoutMs]);
  }

  /** spawn() was called (with ready: 'spawn', that is its READY=1). */
  spawned = false;

  spawn(): void {
    this.spawned = true;
    this.events.onSpawn();
  }

  /** The process (and its group) is gone: a clean exit unless said otherwise. Once only, as the real one. */
  exit(e: WorkerExit = { code: 0, signal: null }): void {
    if (this.exited) throw new Error(`fake worker ${this.pid} exited twice`);
    this.exited = true;
    this.events.onExit(e);
  }

  get env(): Record<string, string> {
    return this.spec.env;
  }
}

/** Records every launch; pids count up from `nextPid` (set it to -1 for a launch that fails). */
export class FakeLaunch {
  readonly workers: FakeWorker[] = [];
  nextPid = 4_000_000;

  readonly fn: Launch = (spec, events) => {
    const pid = this.nextPid < 0 ? -1 : this.nextPid++;
    const w = new FakeWorker(pid, spec, events);
    this.workers.push(w);
    return w;
  };

  /** The workers of generation `id`, in launch order. */
  of(id: number): FakeWorker[] {
    return this.workers.filter((w) => w.env.BATON_GENERATION === String(id));
  }

  /** Workers not exited yet. */
  running(): FakeWorker[] {
    return this.workers.filter((w) => !w.exited);
  }
}

/**
 * One fake successor master, as the predecessor sees it (the real SuccessorHandle's state and
 * promises): what it was started with, what the predecessor told it (confirm, abort), and its
 * steps for the test to make.
 */
export class FakeSuccessor extends SuccessorHandle {
  /** The nextGeneration of each confirm. */
  readonly confirms: number[] = [];
  readonly aborts: Array<{ reason: string; stopSignal: NodeJS.Signals; graceMs: number; ours: string[] }> = [];
  exited = false;

  constructor(
    readonly spec: SuccessorSpec,
    private readonly givenPid: number,
  ) {
    super();
  }

  /** It said `hello` (its pid is known from then on). */
  hello(): this {
    this.pid = this.givenPid;
    return this;
  }

  /** `hello`, then `ready` once re-parented. */
  makeReady(): void {
    if (this.pid === undefined) this.hello();
    if (this.state !== 'starting') throw new Error(`fake successor ${this.givenPid} made ready in state ${this.state}`);
    this.readyBeside(1);
  }

  /** It says `failed` with its reason. */
  failed(reason: string): void {
    this.fail(`the successor (pid ${this.pid}) failed: ${reason}`);
  }

  /** It says a worker of its own failed (ready, unconfirmed). */
  workerFailedNow(reason: string): void {
    this.workerFailed(reason);
  }

  /** The throw-away sh that starts it was killed by `signal` before its trap: no successor exists. */
  shKilled(signal: NodeJS.Signals): void {
    this.shKilledBy = signal;
    this.fail(`the sh that starts the successor was killed by ${signal} before it could`);
  }

  /** It says `master` after its confirmation: control.sock is its own. */
  takeOver(): void {
    if (this.state !== 'confirmed') throw new Error(`fake successor ${this.givenPid} took over in state ${this.state}`);
    this.tookOverWith(true);
  }

  /** The process is gone (the channel closed). Once only, as the real one. */
  exit(): void {
    if (this.exited) throw new Error(`fake successor ${this.givenPid} exited twice`);
    this.exited = true;
    this.fail(this.pid ? `the successor (pid ${this.pid}) exited before it was ready` : 'the successor exited before it started');
    this.tookOverWith(false);
    this.gone();
  }

  running(): boolean {
    return this.pid !== undefined && !this.exited;
  }

  override confirm(nextGeneration: number): void {
    super.confirm(nextGeneration);
    this.confirms.push(nextGeneration);
  }

  /** Resolves at once: the fake has nothing left behind to wait for. */
  abort(reason: string, stopSignal: NodeJS.Signals, graceMs: number, ours: ReadonlySet<string> = new Set()): Promise<{ removed: string[]; lingering: number[] }> {
    this.fail(reason);
    this.aborts.push({ reason, stopSignal, graceMs, ours: [...ours] });
    return Promise.resolve({ removed: [], lingering: [] });
  }
}

/** Records every successor started; pids count up from `nextPid`; `refuse` set: the launch throws it. */
export class FakeLaunchSuccessor {
  readonly successors: FakeSuccessor[] = [];
  nextPid = 5_000_000;
  refuse?: string;

  readonly fn: LaunchSuccessor = (spec) => {
    if (this.refuse) throw new Error(this.refuse);
    const s = new FakeSuccessor(spec, this.nextPid++);
    this.successors.push(s);
    return s;
  };

  /** The last one started. */
  get last(): FakeSuccessor {
    const s = this.successors.at(-1);
    if (!s) throw new Error('no successor was started');
    return s;
  }
}

/** Workers' memory as the test sets it (PSS, or RSS alone with `pss` false); records every sample taken. */
export class FakeMemory {
  readonly bytes = new Map<number, number>();
  readonly samples: number[][] = [];
  pss = true;

  readonly fn: SampleMemory = (pgids) => {
    this.samples.push([...pgids]);
    const out = new Map<number, MemoryReading>();
    for (const p of pgids) {
      const b = this.bytes.get(p);
      if (b !== undefined) out.set(p, { rssBytes: b, pssBytes: this.pss ? b : null });
    }
    return out;
  };

  set(pid: number, bytes: number): void {
    this.bytes.set(pid, bytes);
  }

  /** The same readings as the master's sampler (status and workers.maxMemory): one process a group, no CPU; the master at 0. */
  readonly sampler: Sampler = {
    groups: (pgids) => new Map([...this.fn(pgids)].map(([pgid, m]) => [pgid, { pgid, processes: 1, cpuTicks: 0, ...m }])),
    self: () => ({ rssBytes: 0, cpuSeconds: 0 }),
  };
}

/** Returns the values listed, in order, then `otherwise`. */
export class FakeRandom {
  readonly values: number[] = [];
  otherwise = 0;
  readonly fn = (): number => this.values.shift() ?? this.otherwise;
}
