import net from 'node:net';
import { native } from '../native';
import type { Drops } from './drops';
import type { FdSink } from './fd-sink';

/** journald's listening socket for stream connections, the one behind StandardError=journal. */
export const JOURNAL_STDOUT_SOCKET = '/run/systemd/journal/stdout';
/** journald's native protocol socket: a datagram of FIELD=value lines (sd_journal_send(3)). */
export const JOURNAL_SOCKET = '/run/systemd/journal/socket';

/**
 * A native-protocol datagram: `NAME=value\n` per field, or, for a value with a newline,
 * `NAME\n`, its length as a little-endian 64-bit number, the value and `\n`.
 */
export function journalDatagram(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  return Buffer.concat(
    fields.map(([k, v]) => {
      if (!v.includes('\n')) return Buffer.from(`${k}=${v}\n`);
      const value = Buffer.from(v);
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(value.length));
      return Buffer.concat([Buffer.from(`${k}\n`), len, value, Buffer.from('\n')]);
    }),
  );
}
const RETRY_MS = 1000;
/** Bytes that may wait for a slow journald before lines are dropped. */
const MAX_WAITING = 256 * 1024;

/** Errors after which the journal stream on fd 2 is gone for good (journald stopped). */
const BROKEN = new Set(['EPIPE', 'ECONNRESET', 'ENOTCONN', 'ECONNREFUSED', 'EBADF']);

/**
 * Logs to the journal stream systemd connected as stderr, and once that breaks (journald
 * stopped and started again: the old stream is closed and nothing reconnects it) to a stream
 * connection of its own, reconnected at most once a second while lines come. Chosen over
 * journald's datagram socket because a stream connection is what systemd itself makes: the
 * same "<priority>" prefixes, and journald attributes it to the unit by the connecting
 * process's cgroup; and because libuv keeps it non-blocking, so a journald that stalls costs
 * dropped lines, never a blocked master (Node has no non-blocking AF_UNIX datagram send).
 */
export class JournalSink {
  private stream: JournalStream | null = null;

  constructor(
    private readonly stderr: FdSink,
    private readonly drops: Drops,
    private readonly identifier: string,
    private readonly socketPath = JOURNAL_STDOUT_SOCKET,
    private readonly datagramPath = JOURNAL_SOCKET,
  ) {}

  /**
   * An event: a datagram with its fields (journald attributes it to the unit by our cgroup, as
   * it does the stream); `line`, the same as a plain line, if it cannot be sent (journald
   * away, its socket full: the send never waits).
   */
  event(line: string, priority: number, message: string, fields: ReadonlyArray<readonly [string, string]>): void {
    try {
      native.notifySend(this.datagramPath, journalDatagram([['MESSAGE', message], ['PRIORITY', String(priority)], ['SYSLOG_IDENTIFIER', this.identifier], ...fields]));
      this.drops.written();
    } catch {
      this.write(line);
    }
  }

  write(line: string): void {
    if (!this.stream) {
      const e = this.stderr.write(line);
      if (!e) return this.drops.written();
      if (!BROKEN.has((e as NodeJS.ErrnoException).code ?? '')) return this.drops.dropped(e);
      this.stream = new JournalStream(this.drops, this.identifier, this.socketPath);
    }
    this.stream.write(line);
  }

  reopen(): void {}

  close(): void {
    this.stream?.close();
  }
}

/** A stream connection to journald, with the header of sd_journal_stream_fd(3). */
class JournalStream {
  private sock: net.Socket | null = null;
  private connected = false;
  private lastAttempt = 0;
  private lastError: unknown = 'not connected';
  /** Lines that came while connecting. */
  private waiting: string[] = [];
  private waitingBytes = 0;

  constructor(
    private readonly drops: Drops,
    private readonly identifier: string,
    private readonly socketPath: string,
  ) {}

  write(line: string): void {
    if (!this.sock) {
      if (Date.now() - this.lastAttempt < RETRY_MS) return this.drops.dropped(this.lastError);
      this.connect();
    }
    if (this.connected) return this.send(line);
    if (this.waitingBytes + line.length > MAX_WAITING) return this.drops.dropped({ code: 'EAGAIN', syscall: 'connect' });
    this.waiting.push(line);
    this.waitingBytes += line.length;
  }

  private send(line: string): void {
    const s = this.sock!;
    if (s.writableLength > MAX_WAITING) return this.drops.dropped({ code: 'EAGAIN', syscall: 'write' });
    s.write(line, (e) => (e ? this.drops.dropped(e) : this.drops.written()));
  }

  private connect(): void {
    this.lastAttempt = Date.now();
    // journald shuts its sending side down at once (it never writes): that end of input is
    // no reason to close ours
    const s = net.createConnection({ path: this.socketPath, allowHalfOpen: true });
    this.sock = s;
    s.unref();
    s.on('connect', () => {
      this.connected = true;
      // identifier, unit id (empty: journald finds the unit from our cgroup), priority,
      // level prefix ("<3>" lines), forward to syslog, kmsg, console
      s.write(`${this.identifier}\n\n6\n1\n0\n0\n0\n`);
      const lines = this.waiting;
      this.waiting = [];
      this.waitingBytes = 0;
      for (const l of lines) this.send(l);
    });
    s.on('error', (e) => (this.lastError = e));
    s.on('close', (hadError) => {
      if (!hadError) this.lastError = 'journald closed the stream';
      if (this.sock !== s) return;
      this.sock = null;
      this.connected = false;
      if (this.waiting.length) this.drops.dropped(this.lastError, this.waiting.length);
      this.waiting = [];
      this.waitingBytes = 0;
    });
  }

  close(): void {
    const s = this.sock;
    this.sock = null;
    s?.end();
  }
}
