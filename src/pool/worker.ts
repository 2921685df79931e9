import type { ExitWhy } from '../contract/control';
import type { LineBudget } from '../log/line-budget';
import type { Timer } from '../system/clock';
import type { RecycleWhy } from './recycle';
import type { Watchdog } from './watchdog';
import type { WorkerProcess } from './worker-process';

export type WorkerState = 'starting' | 'ready' | 'stopping' | 'exited';

/** One worker as its generation keeps it; only its generation writes it. */
export class Worker {
  state: WorkerState = 'starting';
  readyAt?: number;
  /** STATUS= the worker last sent. */
  status?: string;
  /** Stopped for not getting ready in time: its exit counts as a crash. */
  timedOut = false;
  /** Signalled by its watchdog (no WATCHDOG=1 in time, or WATCHDOG=trigger): its exit counts as a crash. */
  hung = false;
  /** Why baton stopped it (its exit's why, unless it counts as a crash). */
  stopWhy?: ExitWhy;
  readyTimer?: Timer;
  /** When its age recycles it (workers.maxAgeMs + its own jitter); undefined: no age limit. */
  recycleAt?: number;
  /** Its last memory reading (bytes; pss false: RSS stood in) and how many in a row were over workers.maxMemory. */
  memory?: { bytes: number; pss: boolean };
  overSamples = 0;
  /** Over workers.maxMemory already when it got ready: a recycle would not help (see Recycler). */
  overAtStart = false;
  /** While its replacement starts (once it is ready, stopWhy says why this worker stopped). */
  recycling?: RecycleWhy;
  watchdog!: Watchdog;
  /** The log lines its notifications may cause. */
  lines!: LineBudget;
  proc!: WorkerProcess;

  constructor(
    readonly slot: number,
    readonly generation: number,
    /** Restarts of its slot before this one. */
    readonly restarts: number,
    readonly startedAt: number,
  ) {}

  get pid(): number {
    return this.proc.pid;
  }
}
