import net from 'node:net';
import { native } from '../native';
import { identify } from '../system/process';
import { Channel } from './channel';
import type { PredecessorMessage, SuccessorMessage } from '../contract/upgrade-channel';

/**
 * A successor master's predecessor, as the successor sees it: its end of the channel. Until
 * the predecessor confirms, this master is an "unconfirmed successor": it serves, but does not
 * speak to systemd and refuses USR2.
 */
export class Predecessor {
  private readonly channel: Channel<PredecessorMessage, SuccessorMessage>;
  confirmed = false;

  constructor(
    fd: number,
    /** onConfirm: this master is the main process now; `master` is said once it has returned. */
    handlers: { onConfirm: (nextGeneration?: number) => void; onAbort: (reason: string) => void },
  ) {
    // our workers must not inherit it: its EOF is how the predecessor learns we died
    native.setCloexec(fd, true);
    const sock = new net.Socket({ fd, readable: true, writable: true });
    this.channel = new Channel<PredecessorMessage, SuccessorMessage>(
      sock,
      (m) => {
        if (m.t === 'confirm' && !this.confirmed) {
          this.confirmed = true;
          // onConfirm takes over control.sock; the predecessor answers `baton upgrade` on `master`
          handlers.onConfirm(Number.isInteger(m.nextGeneration) && m.nextGeneration! > 0 ? m.nextGeneration : undefined);
          void this.channel.send({ t: 'master' }).then(() => this.channel.close());
        } else if (m.t === 'abort') {
          handlers.onAbort(`the predecessor aborted the upgrade: ${m.reason}`);
        }
      },
      (error) => {
        if (!this.confirmed) handlers.onAbort(`the predecessor went away before confirming the upgrade${error ? ` (${error.message})` : ''}`);
      },
    );
    this.send({ t: 'hello', pid: process.pid, startTicks: identify(process.pid)?.startTicks });
  }

  /** Resolves once written to the channel (the predecessor reads it even if we die now), or at once if it is closed. */
  send(m: SuccessorMessage): Promise<void> {
    return this.channel.send(m);
  }

  /** Tells the predecessor why this successor gives up; resolves once said (or after 1 s), so the process may exit. */
  fail(reason: string): Promise<void> {
    return Promise.race([this.channel.send({ t: 'failed', reason }), new Promise<void>((r) => setTimeout(r, 1000).unref())]);
  }
}
