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

const OUTPUT_ERRORS = new Set(['EPIPE', 'ECONNRESET', 'EAGAIN', 'EWOULDBLOCK', 'ENOSPC', 'EIO', 'EDQUOT', 'EFBIG']);

/**
 * True for an error of a write to a closed or full stream, as process.stderr emits when its
 * pipe is gone (with no listener it becomes an uncaughtException).
 */
export function isOutputError(e: unknown): boolean {
  const err = e as NodeJS.ErrnoException | undefined;
  if (!err || typeof err !== 'object') return false;
  if (err.code === 'ERR_STREAM_DESTROYED' || err.code === 'ERR_STREAM_WRITE_AFTER_END') return true;
  return (err.syscall === 'write' || err.syscall === 'writev') && OUTPUT_ERRORS.has(err.code ?? '');
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

function openSink(cfg: LogConfig, journal: boolean, drops: Drops): Sink {
  if (cfg.file) {
    const sink = new DirectSink(openFileSink(cfg.file), drops, cfg.file);
    drops.target = `file ${cfg.file}`;
    return sink;
  }
  const { sink, kind } = openStderrSink();
  drops.target = journal ? 'journal' : `stderr (${kind})`;
  return journal ? new JournalSink(sink, drops, path.basename(process.argv[1] ?? 'baton')) : new DirectSink(sink, drops);
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

function parts(cfg: LogConfig, service: string, drops: Drops): { format: winston.Logform.Format; transport: LineTransport } {
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
  return { format, transport: new LineTransport(openSink(cfg, journal, drops)) };
}

const dropsOf = new WeakMap<Logger, Drops>();

export function createLogger(cfg: LogConfig, service: string): Logger {
  // said once the sink writes again; from a fresh tick, not from inside the sink's write
  const drops = new Drops((m) => setImmediate(() => logger.warn(m)));
  const { format, transport } = parts(cfg, service, drops);
  const logger = winston.createLogger({ level: cfg.level, format, transports: [transport], exitOnError: false }) as Logger;
  dropsOf.set(logger, drops);
  logger.reopen = () => transport.sink.reopen();
  logger.sinkStatus = () => drops.status();
  logger.dropped = (e) => drops.dropped(e);
  return logger;
}

/** Changes level, format and file in place on reload, keeping the same logger object. */
export function reconfigureLogger(logger: Logger, cfg: LogConfig, service: string): void {
  const drops = dropsOf.get(logger)!;
  const old = [...logger.transports];
  const { format, transport } = parts(cfg, service, drops);
  logger.configure({ level: cfg.level, format, transports: [transport], exitOnError: false });
  for (const t of old) t.close?.();
  logger.reopen = () => transport.sink.reopen();
}
