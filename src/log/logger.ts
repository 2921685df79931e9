import fs from 'node:fs';
import path from 'node:path';
import type { LogConfig } from '../config/types';
import type { LogSinkStatus } from '../contract/control';
import { eventFields, type LogEvent } from '../contract/journal-events';
import { Drops } from './drops';
import { FdSink, openFileSink, openStdioSink } from './fd-sink';
import { JournalSink } from './journal-sink';

// sd-daemon(3) priority prefixes, read by journald on a service's stdout/stderr.
const JOURNAL_PRIORITY: Record<LogConfig['level'], number> = { error: 3, warn: 4, info: 6, debug: 7 };

/** True when stderr is the journal stream systemd connected (JOURNAL_STREAM is "dev:ino"). */
export function stderrIsJournal(): boolean {
  const js = process.env.JOURNAL_STREAM;
  if (!js) return false;
  try {
    const st = fs.fstatSync(2);
    return js === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
}

/** Writes to fd 2 before there is a logger; a failure is ignored (there is nowhere to say it). */
export function writeStderr(text: string): void {
  try {
    fs.writeSync(2, text);
  } catch {
    /* stderr closed or full */
  }
}

/** Where the log's lines go; a sink never throws and never emits: what fails is counted in Drops. */
interface Sink {
  write(line: string): void;
  /** The journal's: `line` as a datagram with the event's fields. */
  event?(line: string, priority: number, message: string, fields: ReadonlyArray<readonly [string, string]>): void;
  reopen(): void;
  close(): void;
}

/** `log.file` (reopen() for USR1, after logrotate) or stderr, written directly. */
class DirectSink implements Sink {
  constructor(
    private out: FdSink,
    private readonly drops: Drops,
    private readonly file?: string,
  ) {}
  write(line: string): void {
    const e = this.out.write(line);
    if (e) this.drops.dropped(e);
    else this.drops.written();
  }
  reopen(): void {
    if (!this.file) return;
    // a refusal throws before the current fd is closed: the log stays where it was
    const out = openFileSink(this.file);
    this.out.close();
    this.out = out;
  }
  close(): void {
    this.out.close();
  }
}

/** Opens the sink `cfg` names (throws `/log/file: …` if `log.file` is refused); `target` is for Drops. */
function openSink(cfg: LogConfig, journal: boolean, drops: Drops): { sink: Sink; target: string } {
  if (cfg.file) return { sink: new DirectSink(openFileSink(cfg.file), drops, cfg.file), target: `file ${cfg.file}` };
  const { sink, kind } = openStdioSink();
  if (!journal) return { sink: new DirectSink(sink, drops), target: `stderr (${kind})` };
  return { sink: new JournalSink(sink, drops, path.basename(process.argv[1] ?? 'baton')), target: 'journal' };
}

type Level = LogConfig['level'];
const RANK: Record<Level, number> = { error: 0, warn: 1, info: 2, debug: 3 };
type Format = (level: Level, message: string, ev?: LogEvent) => string;

/** How one line reads: `cfg.format`, or the journal's priority prefix when stderr is the journal. */
function formatFor(cfg: LogConfig, service: string, journal: boolean): Format {
  // keys in the order winston wrote them (sorted), so that what reads the JSON lines is unchanged
  if (cfg.format === 'json') {
    return (level, message, ev) =>
      JSON.stringify({
        ...(ev && { event: ev.kind, ...(ev.generation !== undefined && { generation: ev.generation }) }),
        level,
        message,
        ...(ev?.slot !== undefined && { slot: ev.slot }),
        timestamp: new Date().toISOString(),
        ...(ev?.successor !== undefined && { successorPid: ev.successor }),
        ...(ev?.pid !== undefined && { workerPid: ev.pid }),
      });
  }
  // journald stamps time and unit itself
  if (journal) return (level, message) => `<${JOURNAL_PRIORITY[level]}>${message}`;
  // the pid tells the masters of an upgrade apart
  return (level, message) => `${new Date().toISOString()} ${level.padEnd(5)} [${service} ${process.pid}] ${message}`;
}

interface Output {
  rank: number;
  format: Format;
  sink: Sink;
  target: string;
}

function output(cfg: LogConfig, service: string, drops: Drops): Output {
  const journal = !cfg.file && stderrIsJournal();
  const { sink, target } = openSink(cfg, journal, drops);
  return { rank: RANK[cfg.level], format: formatFor(cfg, service, journal), sink, target };
}

/**
 * The master's log: a level filter, a format and a sink, written in the caller's tick (no
 * stream or queue between: what a sink cannot take is dropped and counted, never buffered).
 * Not winston any more: it cost ~25 ms of every master start and ~2.5 MB (issue 12), for a
 * level filter and three line formats; the sinks were already baton's own.
 */
export class Logger {
  constructor(
    private out: Output,
    private readonly drops: Drops,
  ) {}
  /** `ev`: the line is an event (contract/journal-events.ts): in the journal, with its fields. */
  error(message: string, ev?: LogEvent): void {
    this.write('error', message, ev);
  }
  warn(message: string, ev?: LogEvent): void {
    this.write('warn', message, ev);
  }
  info(message: string, ev?: LogEvent): void {
    this.write('info', message, ev);
  }
  debug(message: string, ev?: LogEvent): void {
    this.write('debug', message, ev);
  }
  /** Whether a line of `level` is written (the level filter). */
  enabled(level: Level): boolean {
    return RANK[level] <= this.out.rank;
  }
  private write(level: Level, message: string, ev?: LogEvent): void {
    if (!this.enabled(level)) return;
    const line = this.out.format(level, message, ev) + '\n';
    if (ev && this.out.sink.event) this.out.sink.event(line, JOURNAL_PRIORITY[level], message, eventFields(ev));
    else this.out.sink.write(line);
  }
  /**
   * Reopens the log file (USR1); a no-op when logging to stderr. Returns why a file that cannot
   * be opened, or was refused, was not: the current sink is kept.
   */
  reopen(): string | null {
    try {
      this.out.sink.reopen();
      return null;
    } catch (e) {
      return (e as Error).message;
    }
  }
  /** Lines the sink could not write, for `baton status`. */
  sinkStatus(): LogSinkStatus {
    return this.drops.status();
  }
  /** Counts a line lost elsewhere (a failed write to stdout or stderr), without writing it. */
  dropped(e: unknown): void {
    this.drops.dropped(e);
  }
  /**
   * The first half of changing level, format and file on reload, keeping the same logger
   * object: opens the new sink now, so that a `log.file` that cannot be opened refuses the
   * reload (it throws) before anything changed.
   */
  prepareChange(cfg: LogConfig, service: string): LoggerChange {
    const next = output(cfg, service, this.drops);
    return {
      apply: () => {
        const old = this.out;
        this.drops.target = next.target;
        this.out = next;
        old.sink.close();
      },
      discard: () => next.sink.close(),
    };
  }
}

export function createLogger(cfg: LogConfig, service: string): Logger {
  // said once the sink writes again; from a fresh tick, not from inside the sink's write
  const drops: Drops = new Drops((m) => setImmediate(() => logger.warn(m)));
  const out = output(cfg, service, drops);
  drops.target = out.target;
  const logger = new Logger(out, drops);
  return logger;
}

export interface LoggerChange {
  /** Switches the logger to the new sink, level and format (never throws). */
  apply(): void;
  /** Closes the new sink unused (a reload that failed later). */
  discard(): void;
}
