import fs from 'node:fs';
import tty from 'node:tty';
import { native } from '../native';
import { openAppendFile, UnsafeFileError, UnsafeFolderError } from '../system/trusted-path';

const { O_WRONLY, O_APPEND, O_NONBLOCK, O_NOCTTY } = fs.constants;

/** Writes from `off` on; returns the bytes written or throws the errno error. */
type Put = (fd: number, buf: Buffer, off: number) => number;

const writeFd: Put = (fd, buf, off) => fs.writeSync(fd, buf, off);
const sendFd: Put = (fd, buf, off) => native.sendNoWait(fd, buf.subarray(off));

/**
 * Writes lines to one fd synchronously: nothing queues, nothing emits 'error', and a failed
 * write returns its error. On a non-blocking fd, or through send(MSG_DONTWAIT), a full pipe or
 * socket (a reader that stalls) is EAGAIN at once: the caller drops the line rather than wait.
 */
export class FdSink {
  /** A line went out in part only: the next one starts on a line of its own. */
  private midLine = false;

  constructor(
    readonly fd: number,
    private readonly owned: boolean,
    private readonly put: Put = writeFd,
  ) {}

  /** Writes the whole line, or returns why not (never throws). */
  write(line: string): unknown {
    const buf = Buffer.from(this.midLine ? `\n${line}` : line);
    let off = 0;
    try {
      while (off < buf.length) {
        const n = this.put(this.fd, buf, off);
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

/**
 * Opens `log.file` for appending: a regular file of root's or baton's user, in a folder only
 * they can write to, never through a symlink (openAppendFile). Throws `/log/file: '…': why`.
 */
export function openFileSink(file: string): FdSink {
  try {
    return new FdSink(openAppendFile(file, 0o640), true);
  } catch (e) {
    const refused = e instanceof UnsafeFolderError || e instanceof UnsafeFileError;
    throw new Error(`/log/file: '${file}': ${refused ? '' : 'cannot open it: '}${(e as Error).message}`);
  }
}

/**
 * The sink for fd 2 (or 1), made so that a stalled reader cannot block the master and without
 * changing what the workers share: the fd's open file description (and so its O_NONBLOCK) is
 * the workers' too (stdio inherited). A pipe or a terminal is opened a second time through
 * /proc/self/fd/N, which gives a description of our own that may be non-blocking; a socket
 * cannot be reopened, so each line is sent with MSG_DONTWAIT instead. A regular file does
 * not block.
 */
export function openStdioSink(stdio: 1 | 2 = 2): { sink: FdSink; kind: string } {
  let st: fs.Stats | undefined;
  try {
    st = fs.fstatSync(stdio);
  } catch {
    /* closed: writes fail with EBADF and are counted */
  }
  if (st && (st.isFIFO() || (st.isCharacterDevice() && tty.isatty(stdio)))) {
    try {
      const fd = fs.openSync(`/proc/self/fd/${stdio}`, O_WRONLY | O_APPEND | O_NONBLOCK | O_NOCTTY);
      return { sink: new FdSink(fd, true), kind: st.isFIFO() ? 'pipe' : 'terminal' };
    } catch {
      /* no /proc, or the pipe has no reader any more (ENXIO, so writes fail with EPIPE): the fd as it is */
    }
  }
  if (st?.isSocket()) return { sink: new FdSink(stdio, false, sendFd), kind: 'socket' };
  return { sink: new FdSink(stdio, false), kind: st?.isFIFO() ? 'pipe' : st?.isFile() ? 'file' : st?.isCharacterDevice() ? 'device' : 'other' };
}
