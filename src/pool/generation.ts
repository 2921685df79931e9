import type { Config } from '../config/types';
import type { Listener } from '../sockets/listeners';
import { describeExit, type WorkerExit } from './exit';
import type { Worker } from './worker';

/**
 * starting: its workers are coming up; it serves nothing the master counts on yet.
 * serving:  the generation the master keeps at `count` workers, restarting crashed ones.
 * draining: replaced (or WINCHed), its workers are stopping.
 * failed:   never got ready; its workers are being stopped.
 */
export type GenerationState = 'starting' | 'serving' | 'draining' | 'failed';

/** The workers started by one config load, and the sockets they were given. */
export class Generation {
  state: GenerationState = 'starting';
  readonly slots = new Map<number, Worker>();
  /** Consecutive crashes per slot, for the restart backoff. */
  readonly crashes = new Map<number, number>();
  readonly restartTimers = new Map<number, NodeJS.Timeout>();
  readonly startedAt = Date.now();
  readyAt?: number;
  count: number;
  /** Settles when every worker is ready (resolve) or the generation fails (reject). */
  readonly ready: Promise<void>;
  private settle!: { resolve: () => void; reject: (e: Error) => void };

  constructor(
    readonly id: number,
    readonly config: Config,
    readonly listeners: Listener[],
  ) {
    this.count = config.workers.count;
    this.ready = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    // a failure nobody awaits (a stop during start-up) is not an unhandled rejection
    this.ready.catch(() => undefined);
  }

  workers(): Worker[] {
    return [...this.slots.values()];
  }

  allReady(): boolean {
    if (this.slots.size < this.count) return false;
    return this.workers().every((w) => w.state === 'ready');
  }

  /** starting → serving once every worker is ready. */
  promoteIfReady(): boolean {
    if (this.state !== 'starting' || !this.allReady()) return false;
    this.state = 'serving';
    this.readyAt = Date.now();
    this.settle.resolve();
    return true;
  }

  fail(reason: string): boolean {
    if (this.state !== 'starting') return false;
    this.state = 'failed';
    this.settle.reject(new Error(reason));
    return true;
  }

  clearRestartTimers(): void {
    for (const t of this.restartTimers.values()) clearTimeout(t);
    this.restartTimers.clear();
  }

  describeWorkerExit(w: Worker, e: WorkerExit): string {
    return `worker ${w.slot} (pid ${w.pid}) of generation ${this.id} ${describeExit(e)}`;
  }
}
