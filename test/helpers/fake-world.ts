// The outside world of the pool and the master, faked for unit tests: a clock whose time moves
// only when the test says so, and a Launch whose worker processes are objects the test makes
// spawn and exit. No process is started.
import type { Clock, Timer } from '../../src/system/clock';
import type { WorkerExit } from '../../src/pool/exit';
import type { Launch, LaunchSpec, WorkerProcess, WorkerProcessEvents } from '../../src/pool/worker-process';

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

  spawn(): void {
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
