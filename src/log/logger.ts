import fs from 'node:fs';
import winston from 'winston';
import Transport from 'winston-transport';
import type { LogConfig } from '../config/types';

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

/** Writes formatted lines to a file opened for appending, or to stderr; reopen() for USR1. */
class LineTransport extends Transport {
  private fd: number | null = null;
  constructor(private readonly file?: string) {
    super();
    this.reopen();
  }
  reopen(): void {
    if (!this.file) return;
    const fd = fs.openSync(this.file, 'a', 0o640);
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = fd;
  }
  override log(info: Record<string | symbol, unknown>, next: () => void): void {
    const line = String(info[MESSAGE]) + '\n';
    if (this.fd !== null) fs.writeSync(this.fd, line);
    else process.stderr.write(line);
    next();
  }
  override close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
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
}

function parts(cfg: LogConfig, service: string): { format: winston.Logform.Format; transport: LineTransport } {
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
  return { format, transport: new LineTransport(cfg.file) };
}

export function createLogger(cfg: LogConfig, service: string): Logger {
  const { format, transport } = parts(cfg, service);
  const logger = winston.createLogger({ level: cfg.level, format, transports: [transport], exitOnError: false }) as Logger;
  logger.reopen = () => transport.reopen();
  return logger;
}

/** Changes level, format and file in place on reload, keeping the same logger object. */
export function reconfigureLogger(logger: Logger, cfg: LogConfig, service: string): void {
  const { format, transport } = parts(cfg, service);
  const old = [...logger.transports];
  logger.configure({ level: cfg.level, format, transports: [transport], exitOnError: false });
  for (const t of old) t.close?.();
  logger.reopen = () => transport.reopen();
}
