// Recycling: a worker over workers.maxMemory in maxMemorySamples samples in a row, or past
// workers.maxAgeMs plus its own jitter, is replaced, the replacement first: it starts for the
// same slot (the generation runs one worker more meanwhile), and only once it is ready does
// the old one drain. The generation checks every sampleIntervalMs and asks its master
// (PoolEvent 'recycle-due'); the master's transition table says whether the phase allows it,
// and the master answers with Generation.recycle(). Everything runs in the master's queue.
import type { WorkersConfig } from '../config/types';
import type { ExitWhy } from '../contract/control';
import type { Logger } from '../log/logger';
import type { Clock, Timer } from '../system/clock';
import { recycleDelayMs } from './backoff';
import type { Worker } from './worker';

export type RecycleWhy = 'memory' | 'age';

/** A process group's memory as system/proc-sample.ts reads it; pssBytes null: smaps_rollup unreadable, RSS stands in. */
export interface MemoryReading {
  rssBytes: number;
  pssBytes: number | null;
}

/** Reads process groups' memory by group id (a worker leads its own group: its pid is the id). */
export type SampleMemory = (pgids: readonly number[]) => ReadonlyMap<number, MemoryReading>;

/** What a generation asks its master: recycle this worker (the pid: a report about a worker since replaced is stale). */
export interface RecycleDue {
  id: number;
  slot: number;
  pid: number;
  why: RecycleWhy;
}

/** What recycling needs of its generation. */
export interface RecycleHost {
  readonly id: number;
  readonly wc: WorkersConfig;
  readonly clock: Clock;
  readonly log: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
  /** Uniform in [0, 1): the age jitter. */
  random(): number;
  sample: SampleMemory;
  serving(): boolean;
  /** The workers holding the slots. */
  holders(): Iterable<Worker>;
  holder(slot: number): Worker | undefined;
  /** Starts a worker for `slot` that holds no slot yet. */
  launch(slot: number, restarts: number): Worker;
  /** `w` holds its slot from now on; the worker that held it drains (stopSignal, stopTimeoutMs), its last exit's why `why`. */
  hand(w: Worker, why: RecycleWhy): void;
  stop(w: Worker, why: ExitWhy): void;
  name(w: Worker): string;
  due(e: RecycleDue): void;
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const reading = (w: Worker) => (w.memory ? `${w.memory.pss ? 'PSS' : 'RSS'} ${mib(w.memory.bytes)}` : 'not read');

/**
 * One recycle under way: `next` starts for `old`'s slot while `old` serves. commit() once
 * `next` is ready (it takes the slot, `old` drains); abandon() when it is not ready in time or
 * exits first (it is stopped, `old` serves on).
 */
export class Recycle {
  /** Why the replacement was given up on (it is stopping). */
  abandoned?: string;

  constructor(
    readonly old: Worker,
    readonly next: Worker,
    readonly why: RecycleWhy,
    /** What made it due, for the log. */
    readonly figures: string,
    readonly startedAt: number,
  ) {}

  commit(host: RecycleHost): void {
    this.old.recycling = undefined;
    host.hand(this.next, this.why);
    const { stopSignal, stopTimeoutMs } = host.wc;
    host.log.info(
      `${host.name(this.old)} recycled (${this.why}: ${this.figures}): its replacement (pid ${this.next.pid}) is ready after ` +
        `${host.clock.now() - this.startedAt} ms and holds slot ${this.next.slot}; the old one drains (${stopSignal}, deadline ${stopTimeoutMs} ms)`,
    );
  }

  /** `why`: the replacement's exit, as its slot's last exit says it ('crash': it did not get ready). */
  abandon(host: RecycleHost, reason: string, why: ExitWhy): void {
    if (this.abandoned !== undefined) return;
    this.abandoned = reason;
    this.old.recycling = undefined;
    host.stop(this.next, why);
  }
}

/** A generation's recycling: the checks, the recycles under way (at most maxRecycling), each slot's backoff. */
export class Recycler {
  readonly counts: Record<RecycleWhy, number> = { memory: 0, age: 0 };
  /** By slot. */
  private readonly inFlight = new Map<number, Recycle>();
  /** Failed recycles in a row per slot, and when the next may start. */
  private readonly failures = new Map<number, { n: number; until: number }>();
  private tick?: Timer;

  constructor(private readonly host: RecycleHost) {}

  private get wc(): WorkersConfig {
    return this.host.wc;
  }

  /** Replacements starting. */
  replacements(): Worker[] {
    return [...this.inFlight.values()].map((r) => r.next);
  }

  /** How many replacements are starting. */
  get size(): number {
    return this.inFlight.size;
  }

  /** The replacement with this pid (no copy: asked for every notification). */
  byPid(pid: number): Worker | undefined {
    for (const r of this.inFlight.values()) if (r.next.pid === pid) return r.next;
    return undefined;
  }

  /** A worker was started: its own deadline, maxAgeMs + a uniform jitter in [0, maxAgeJitterMs]. */
  started(w: Worker): void {
    const { maxAgeMs, maxAgeJitterMs } = this.wc;
    if (maxAgeMs > 0) w.recycleAt = w.startedAt + maxAgeMs + Math.floor(this.host.random() * (maxAgeJitterMs + 1));
  }

  /** The generation serves: with a limit, its workers are checked every sampleIntervalMs (no limit: no timer). */
  begin(): void {
    if (this.tick || (this.wc.maxMemory === undefined && this.wc.maxAgeMs === 0)) return;
    this.tick = this.host.clock.every(this.wc.sampleIntervalMs, () => this.check());
  }

  /** Draining or failed: no more checks. Replacements starting are stopped with the rest. */
  end(): void {
    this.tick?.cancel();
    this.tick = undefined;
  }

  /**
   * `w` got ready. With maxMemory it is sampled at once: returned, the reason if it is over the
   * limit already (a starting generation fails with it). A replacement's recycle commits.
   */
  ready(w: Worker): string | undefined {
    const max = this.wc.maxMemory;
    let over: string | undefined;
    if (max !== undefined && w.pid > 0) {
      this.measure([w]);
      w.overAtStart = w.overSamples > 0;
      if (w.overAtStart) over = `${this.host.name(w)} uses ${reading(w)} as it gets ready, over workers.maxMemory (${mib(max)}): the limit is below what a worker needs`;
    }
    const r = this.of(w);
    if (r && r.abandoned === undefined) {
      this.inFlight.delete(w.slot);
      r.commit(this.host);
      this.counts[r.why]++;
      if (!w.overAtStart) this.failures.delete(w.slot);
    }
    return over;
  }

  /** Samples (with maxMemory), then asks the master to recycle what is due, as many as maxRecycling leaves room for. */
  check(): void {
    if (!this.host.serving()) return;
    const ready = [...this.host.holders()].filter((w) => w.state === 'ready' && w.pid > 0);
    if (this.wc.maxMemory !== undefined) this.measure(ready);
    const now = this.host.clock.now();
    const due = ready.flatMap((w) => {
      const why = this.dueWhy(w, now);
      return why ? [{ w, why }] : [];
    });
    // memory first (it grows), then the oldest deadline
    due.sort((a, b) => (a.why !== b.why ? (a.why === 'memory' ? -1 : 1) : (a.w.recycleAt ?? 0) - (b.w.recycleAt ?? 0)));
    const room = Math.max(0, this.wc.maxRecycling - this.inFlight.size);
    for (const { w, why } of due.slice(0, room)) this.host.due({ id: this.host.id, slot: w.slot, pid: w.pid, why });
  }

  /** The master's answer to recycle-due: the replacement starts, unless things changed meanwhile. */
  recycle(e: RecycleDue): void {
    const old = this.host.holder(e.slot);
    const stale = !this.host.serving()
      ? 'the generation no longer serves'
      : old?.pid !== e.pid || old.state !== 'ready'
        ? 'that worker no longer serves the slot'
        : this.inFlight.has(e.slot)
          ? 'one is under way'
          : this.inFlight.size >= this.wc.maxRecycling
            ? `${this.inFlight.size} under way already (workers.maxRecycling)`
            : undefined;
    if (stale || !old) return this.host.log.debug(`recycle of slot ${e.slot} (pid ${e.pid}) of generation ${this.host.id} not started: ${stale}`);
    const figures = this.figures(old, e.why);
    old.recycling = e.why;
    const next = this.host.launch(e.slot, old.restarts);
    this.inFlight.set(e.slot, new Recycle(old, next, e.why, figures, this.host.clock.now()));
    this.host.log.info(`recycling ${this.host.name(old)} (${e.why}: ${figures}): its replacement is pid ${next.pid}; the old one serves until it is ready`, {
      kind: 'recycle',
      generation: this.host.id,
      slot: e.slot,
      pid: old.pid,
    });
  }

  /** A replacement missed readyTimeoutMs: stopped, the old worker serves on. False for any other worker. */
  notReady(w: Worker, reason: string): boolean {
    const r = this.of(w);
    if (!r) return false;
    this.failed(r, reason);
    return true;
  }

  /**
   * A worker exited (`how`: describeExit's words). A replacement: its recycle ends, failed if it
   * never got ready while the generation serves ('replacement'). The old worker of a recycle
   * under way: its replacement, which takes the slot now (returned).
   */
  exited(w: Worker, how: string): 'replacement' | Worker | undefined {
    const r = this.of(w);
    if (r) {
      if (this.host.serving()) this.failed(r, `${how} before it was ready`);
      r.old.recycling = undefined;
      this.inFlight.delete(w.slot);
      return 'replacement';
    }
    const mine = this.inFlight.get(w.slot);
    if (mine?.old !== w || mine.abandoned !== undefined) return undefined;
    this.inFlight.delete(w.slot);
    return mine.next;
  }

  /** TTOU took the slot away: its replacement is stopped. */
  /** Its slot was taken away (`by`: SIGTTOU, a rolling reload): the replacement under way stops. */
  cancel(slot: number, by: string): void {
    const r = this.inFlight.get(slot);
    if (!r || r.abandoned !== undefined) return;
    r.abandon(this.host, `its slot was removed (${by})`, 'resize');
    this.host.log.info(`recycling ${this.host.name(r.old)} cancelled: its slot was removed (${by}); stopping its replacement (pid ${r.next.pid})`);
  }

  private of(next: Worker): Recycle | undefined {
    const r = this.inFlight.get(next.slot);
    return r?.next === next ? r : undefined;
  }

  private measure(ws: Worker[]): void {
    const readings = this.host.sample(ws.map((w) => w.pid));
    for (const w of ws) {
      const r = readings.get(w.pid);
      if (!r) continue;
      w.memory = { bytes: r.pssBytes ?? r.rssBytes, pss: r.pssBytes !== null };
      w.overSamples = w.memory.bytes > this.wc.maxMemory! ? w.overSamples + 1 : 0;
    }
  }

  private dueWhy(w: Worker, now: number): RecycleWhy | undefined {
    if (this.inFlight.has(w.slot)) return undefined;
    const why = w.overSamples >= this.wc.maxMemorySamples ? 'memory' : w.recycleAt !== undefined && now >= w.recycleAt ? 'age' : undefined;
    if (why === 'memory' && w.overAtStart) {
      // its replacement would be over the limit too: counted once, as a failed recycle
      w.overAtStart = false;
      const f = this.fail(w.slot);
      this.host.log.error(
        `${this.host.name(w)} is over workers.maxMemory (${mib(this.wc.maxMemory!)}) since it got ready (${reading(w)} now): the limit is below ` +
          `what a worker needs; recycling slot ${w.slot} waits ${f.until - now} ms (backoff: ${f.n} in a row), it does not loop`,
      );
    }
    const f = this.failures.get(w.slot);
    return why && f && now < f.until ? undefined : why;
  }

  private failed(r: Recycle, reason: string): void {
    if (r.abandoned !== undefined) return;
    r.abandon(this.host, reason, 'crash');
    const f = this.fail(r.old.slot);
    this.host.log.error(
      `recycling ${this.host.name(r.old)} (${r.why}) failed: its replacement (pid ${r.next.pid}) ${reason}; the old worker serves on, ` +
        `the slot's next recycle waits ${f.until - this.host.clock.now()} ms (${f.n} failed in a row)`,
    );
  }

  private fail(slot: number): { n: number; until: number } {
    const n = (this.failures.get(slot)?.n ?? 0) + 1;
    const f = { n, until: this.host.clock.now() + recycleDelayMs(n) };
    this.failures.set(slot, f);
    return f;
  }

  private figures(w: Worker, why: RecycleWhy): string {
    const wc = this.wc;
    if (why === 'memory') return `${reading(w)} over workers.maxMemory ${mib(wc.maxMemory!)} in ${w.overSamples} samples in a row`;
    const up = this.host.clock.now() - w.startedAt;
    return `up ${(up / 1000).toFixed(1)} s, past workers.maxAgeMs ${wc.maxAgeMs} ms + its jitter ${w.recycleAt! - w.startedAt - wc.maxAgeMs} ms`;
  }
}
