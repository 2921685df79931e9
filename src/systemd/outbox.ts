import fs from 'node:fs';
import { native } from '../native';

const RETRY_MS = 50;
const MAX_QUEUED = 64;
const WATCHDOG_ONLY = 'WATCHDOG=1';

interface Pending {
  data: Buffer;
  /** Our own duplicates of the fds to send, closed once sent or dropped. */
  fds?: number[];
}

/**
 * sd_notify messages to one socket, never waiting for its reader. notifySend() does not block
 * (a unix datagram sender would, while the receiver's queue holds net.unix.max_dgram_qlen
 * messages: a stalled master or systemd, or a stranger who filled the queue, would stall our
 * event loop, and with it every request of a worker). A message that finds the queue full
 * waits here, in order, and is tried again every RETRY_MS. A WATCHDOG=1 while one waits
 * already adds nothing (both say the same). At most MAX_QUEUED wait; beyond that the oldest
 * is dropped and counted: a reader gone that long has lost the thread anyway.
 */
export class NotifyOutbox {
  private queue: Pending[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** Messages dropped: the queue overflowed, or sending failed on a retry. */
  dropped = 0;

  constructor(
    readonly socket: string,
    /** A message given up on a retry (sending failed otherwise than EAGAIN, or overflow). */
    private readonly onDrop: (why: string) => void = () => undefined,
  ) {}

  /** Sends now, or queues on a full receiver. Throws what sending throws otherwise (nothing queued then). */
  send(data: Buffer, fds?: number[]): void {
    if (this.queue.length === 0) {
      try {
        native.notifySend(this.socket, data, fds);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
      }
    } else if (!fds && data.toString('latin1') === WATCHDOG_ONLY && this.queue.some((p) => !p.fds && p.data.toString('latin1') === WATCHDOG_ONLY)) {
      return;
    }
    // the caller may close its fds meanwhile (and the number be reused): we send our own copies
    this.queue.push({ data, fds: fds?.map((fd) => native.dupCloexec(fd)) });
    if (this.queue.length > MAX_QUEUED) this.drop(this.queue.shift()!, `more than ${MAX_QUEUED} messages waiting`);
    this.timer ??= setInterval(() => this.flush(), RETRY_MS).unref();
  }

  /** Messages waiting for room in the receiver's queue. */
  get waiting(): number {
    return this.queue.length;
  }

  private flush(): void {
    while (this.queue.length) {
      const p = this.queue[0];
      try {
        native.notifySend(this.socket, p.data, p.fds);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return;
        this.queue.shift();
        this.drop(p, (e as Error).message);
        continue;
      }
      this.queue.shift();
      closeAll(p.fds);
    }
    this.stop();
  }

  private drop(p: Pending, why: string): void {
    closeAll(p.fds);
    this.dropped++;
    this.onDrop(`dropped an sd_notify message to ${this.socket} (${why}): ${p.data.toString('utf8', 0, 80).replace(/\n/g, ' ')}`);
  }

  /** Forgets what waits (at exit, or when the socket is no longer ours to speak to). */
  clear(): void {
    for (const p of this.queue.splice(0)) closeAll(p.fds);
    this.stop();
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

function closeAll(fds: number[] | undefined): void {
  for (const fd of fds ?? []) {
    try {
      fs.closeSync(fd);
    } catch {
      /* already closed */
    }
  }
}
