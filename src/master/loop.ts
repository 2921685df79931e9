import type { Logger } from '../log/logger';
import type { MasterEvent } from './events';
import { decide, type Handler, type Phase } from './transitions';

/**
 * A handler of the master, given an event its rows name. Declared as a method so that a handler
 * may take the narrower event those rows give it (method parameters compare both ways): which
 * events reach which handler is the table's to say, not the compiler's.
 */
interface HandlerMethod {
  handle(e: MasterEvent): Phase | void;
}

/** The master's handlers by name: each does its part and, where its row lists several, names the next phase. */
export type Handlers = { [H in Handler]: HandlerMethod['handle'] };

/**
 * One queue for every input of the master; one item runs at a time, to its end. An item is an
 * event (looked up in the transition table) or a component's input (a worker's exit, an
 * operation's step), run as it is. I/O callbacks never run inside an item, so whatever posts
 * from one (a signal, a socket) finds the loop idle and is handled before post() returns.
 */
export class Loop {
  private current: Phase = 'starting';
  private readonly queue: Array<MasterEvent | (() => void)> = [];
  private busy = false;

  constructor(
    private readonly handlers: Handlers,
    private readonly log: Pick<Logger, 'debug' | 'warn' | 'error'>,
  ) {}

  get phase(): Phase {
    return this.current;
  }

  post(e: MasterEvent): void {
    this.queue.push(e);
    this.drain();
  }

  run(fn: () => void): void {
    this.queue.push(fn);
    this.drain();
  }

  /** Inputs wait in the queue until release() (the master's start-up, before it has its sockets). */
  hold(): void {
    this.busy = true;
  }

  release(): void {
    this.busy = false;
    this.drain();
  }

  private drain(): void {
    if (this.busy) return;
    this.busy = true;
    try {
      for (let next = this.queue.shift(); next; next = this.queue.shift()) {
        try {
          if (typeof next === 'function') next();
          else this.dispatch(next);
        } catch (e) {
          this.log.error(`internal error in phase ${this.current}: ${(e as Error).stack}`);
        }
      }
    } finally {
      this.busy = false;
    }
  }

  /** The only place that writes the phase. */
  private dispatch(e: MasterEvent): void {
    const row = decide(this.current, e.kind);
    if (row === undefined) {
      this.log.debug(`${e.kind} ignored while ${this.current}`);
      return;
    }
    if (typeof row === 'string') return this.refuse(e, row);
    const chosen = this.handlers[row.do](e);
    // a handler whose row lists several phases names one of them; the others name none
    const next = typeof row.next === 'string' ? row.next : row.next === undefined ? this.current : chosen;
    if (next === undefined || (Array.isArray(row.next) && !row.next.includes(next))) {
      throw new Error(`${row.do} in phase ${this.current} chose ${String(chosen)}, not one of ${String(row.next)}`);
    }
    if (next !== this.current) this.log.debug(`phase ${this.current} -> ${next} (${e.kind})`);
    this.current = next;
  }

  private refuse(e: MasterEvent, why: string): void {
    const what = e.kind === 'resize' ? (e.delta > 0 ? 'SIGTTIN' : 'SIGTTOU') : e.kind === 'winch' ? 'SIGWINCH' : e.kind;
    const source = 'source' in e ? `${e.source}: ` : '';
    const ev = e.kind === 'reload' || e.kind === 'upgrade' ? { kind: `${e.kind}-refused` as const } : undefined;
    this.log.warn(`${source}${what} refused: ${why}`, ev);
    if ('reply' in e && e.reply) e.reply({ ok: false, error: `${e.kind} refused: ${why}` });
  }
}
