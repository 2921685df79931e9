import fs from 'node:fs';
import net from 'node:net';
import tty from 'node:tty';

const { O_WRONLY, O_APPEND, O_CREAT, O_NONBLOCK, O_NOCTTY } = fs.constants;

/**
 * Writes lines to one fd with fs.writeSync: nothing queues, nothing emits 'error', and a
 * failed write returns its error. On a non-blocking fd a full pipe or socket (a reader that
 * stalls) is EAGAIN at once: the caller drops the line rather than wait.
 */
export class FdSink {
  /** A line went out in part only: the next one starts on a line of its own. */
  private midLine = false;

  constructor(
    readonly fd: number,
    private readonly owned: boolean,
    private readonly beforeWrite?: () => void,
  ) {}

  /** Writes the whole line, or returns why not (never throws). */
  write(line: string): unknown {
    const buf = Buffer.from(this.midLine ? `\n${line}` : line);
    let off = 0;
    try {
      this.beforeWrite?.();
      while (off < buf.length) {
        const n = fs.writeSync(this.fd, buf, off);
        // each round writes something or throws, so the loop ends
        if (n <= 0) throw Object.assign(new Error('write wrote nothing'), { code: 'EAGAIN', syscall: 'write' });
        off += n;
      }
      this.midLine = false;
      return null;
    } catch (e) {
      if (off > 0) this.midLine = true;
      return e;
    }
  }

  close(): void {
    if (!this.owned) return;
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already gone */
    }
  }
}

/** Opens `file` for appending; O_NONBLOCK so that a FIFO with a stalled reader drops lines. */
export function openFileSink(file: string): FdSink {
  return new FdSink(fs.openSync(file, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK, 0o640), true);
}

/**
 * The sink for fd 2, made so that a stalled reader cannot block the master: a pipe or a
 * terminal is opened a second time through /proc/self/fd/2, which gives an open file
 * description of our own whose O_NONBLOCK nobody else sees; a socket cannot be reopened, so
 * O_NONBLOCK is set on fd 2 itself before every write (libuv clears it in every child it
 * spawns with an inherited stderr, and the workers share fd 2's description). A regular file
 * does not block.
 */
export function openStderrSink(): { sink: FdSink; kind: string } {
  let st: fs.Stats | undefined;
  try {
    st = fs.fstatSync(2);
  } catch {
    /* fd 2 closed: writes fail with EBADF and are counted */
  }
  if (st && (st.isFIFO() || (st.isCharacterDevice() && tty.isatty(2)))) {
    try {
      const fd = fs.openSync('/proc/self/fd/2', O_WRONLY | O_APPEND | O_NONBLOCK | O_NOCTTY);
      return { sink: new FdSink(fd, true), kind: st.isFIFO() ? 'pipe' : 'terminal' };
    } catch {
      /* no /proc, or the pipe has no reader any more (ENXIO): fd 2 as it is */
    }
  }
  if (st?.isSocket() || st?.isFIFO()) return { sink: new FdSink(2, false, nonBlocking(2)), kind: st.isFIFO() ? 'pipe' : 'socket' };
  return { sink: new FdSink(2, false), kind: st?.isFile() ? 'file' : st?.isCharacterDevice() ? 'device' : 'other' };
}

/** A function that sets O_NONBLOCK on `fd` (a pipe or stream socket), or undefined if it cannot. */
function nonBlocking(fd: number): (() => void) | undefined {
  try {
    // Node's one way to fcntl(O_NONBLOCK): a libuv handle's setBlocking(). This handle only sets
    // the flag; it never reads or writes and is never closed (fd 2 stays open).
    const s = new net.Socket({ fd, readable: false, writable: false });
    s.unref();
    const handle = (s as unknown as { _handle?: { setBlocking?(blocking: boolean): number } })._handle;
    if (typeof handle?.setBlocking !== 'function') return undefined;
    keep.push(s);
    return () => void handle.setBlocking!(false);
  } catch {
    return undefined;
  }
}
const keep: net.Socket[] = [];
