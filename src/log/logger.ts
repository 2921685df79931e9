import fs from 'node:fs';
import path from 'node:path';
import winston from 'winston';
import Transport from 'winston-transport';
import type { LogConfig } from '../config/types';
import { Drops, type LogSinkStatus } from './drops';
import { FdSink, openFileSink, openStderrSink } from './fd-sink';
import { JournalSink } from './journal-sink';

export type { LogSinkStatus } from './drops';

// sd-daemon(3) priority prefixes, read by journald on a service's stdout/stderr.
const JOURNAL_PRIORITY: Record<string, number> = { error: 3, warn: 4, info: 6, debug: 7 };
const MESSAGE = Symbol.for('message');

// winston loads each format lazily on first use. Touch them all now, at start-up: a package
// upgrade replaces these files under a running master, and a reload that switched format
// must not load a newer version's file into the old process.
void [winston.format.json, winston.format.timestamp, winston.format.printf, winston.format.combine];

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
    const out = openFileSink(this.file);
    this.out.close();
    this.out = out;
  }
  close(): void {
    this.out.close();
  }
}

/** Opens the sink `cfg` names (throws if `log.file` cannot be opened); `target` is for Drops. */
function openSink(cfg: LogConfig, journal: boolean, drops: Drops): { sink: Sink; target: string } {
  if (cfg.file) return { sink: new DirectSink(openFileSink(cfg.file), drops, cfg.file), target: `file ${cfg.file}` };
  const { sink, kind } = openStderrSink();
  if (!journal) return { sink: new DirectSink(sink, drops), target: `stderr (${kind})` };
  return { sink: new JournalSink(sink, drops, path.basename(process.argv[1] ?? 'baton')), target: 'journal' };
}

class LineTransport extends Transport {
  constructor(readonly sink: Sink) {
    super();
  }
  override log(info: Record<string | symbol, unknown>, next: () => void): void {
    this.sink.write(String(info[MESSAGE]) + '\n');
    next();
  }
  override close(): void {
    this.sink.close();
  }
}

function fields(info: Record<string, unknown>): string {
  const skip = new Set(['level', 'message', 'timestamp', 'service']);
  const parts: string[] = [];
  for (const [k, v] of Object.entries(info)) {
    if (skip.has(k) || v === undefined) continue;
    parts.push(`${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`);
  }
  return parts.length ? ' ' + parts.join(' ') : '';
}

export interface Logger extends winston.Logger {
  /** Reopens the log file (USR1); a no-op when logging to stderr. */
  reopen(): void;
  /** Lines the sink could not write, for `baton status`. */
  sinkStatus(): LogSinkStatus;
  /** Counts a line lost elsewhere (a failed write to stdout or stderr), without writing it. */
  dropped(e: unknown): void;
}

function parts(cfg: LogConfig, service: string, drops: Drops): { format: winston.Logform.Format; transport: LineTransport; target: string } {
  const journal = !cfg.file && stderrIsJournal();
  let format: winston.Logform.Format;
  if (cfg.format === 'json') {
    format = winston.format.combine(winston.format.timestamp(), winston.format.json());
  } else if (journal) {
    // journald stamps time and unit itself
    format = winston.format.printf((i) => `<${JOURNAL_PRIORITY[i.level] ?? 6}>${i.message}${fields(i)}`);
  } else {
    format = winston.format.combine(
      winston.format.timestamp(),
      // the pid tells the masters of an upgrade apart
      winston.format.printf((i) => `${i.timestamp} ${i.level.padEnd(5)} [${service} ${process.pid}] ${i.message}${fields(i)}`),
    );
  }
  const { sink, target } = openSink(cfg, journal, drops);
  return { format, transport: new LineTransport(sink), target };
}

const dropsOf = new WeakMap<Logger, Drops>();

export function createLogger(cfg: LogConfig, service: string): Logger {
  // said once the sink writes again; from a fresh tick, not from inside the sink's write
  const drops = new Drops((m) => setImmediate(() => logger.warn(m)));
  const { format, transport, target } = parts(cfg, service, drops);
  drops.target = target;
  const logger = winston.createLogger({ level: cfg.level, format, transports: [transport], exitOnError: false }) as Logger;
  dropsOf.set(logger, drops);
  logger.reopen = () => transport.sink.reopen();
  logger.sinkStatus = () => drops.status();
  logger.dropped = (e) => drops.dropped(e);
  return logger;
}

export interface LoggerChange {
  /** Switches the logger to the new sink, level and format (never throws). */
  apply(): void;
  /** Closes the new sink unused (a reload that failed later). */
  discard(): void;
}

/**
 * The first half of changing level, format and file on reload, keeping the same logger
 * object: opens the new sink now, so that a `log.file` that cannot be opened refuses the
 * reload (it throws) before anything changed.
 */
export function prepareLoggerChange(logger: Logger, cfg: LogConfig, service: string): LoggerChange {
  const drops = dropsOf.get(logger)!;
  let next: ReturnType<typeof parts>;
  try {
    next = parts(cfg, service, drops);
  } catch (e) {
    throw new Error(`/log/file: cannot open it: ${(e as Error).message}`);
  }
  const { format, transport, target } = next;
  return {
    apply() {
      const old = [...logger.transports];
      drops.target = target;
      logger.configure({ level: cfg.level, format, transports: [transport], exitOnError: false });
      for (const t of old) t.close?.();
      logger.reopen = () => transport.sink.reopen();
    },
    discard() {
      transport.sink.close();
    },
  };
}
