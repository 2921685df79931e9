import type net from 'node:net';
import { frame, readJsonLines } from '../contract/json-lines';
import type { PredecessorMessage, SuccessorMessage } from '../contract/upgrade-channel';

// The private channel between a predecessor and its successor: a socketpair, one JSON
// object per line (contract/json-lines.ts; the messages: contract/upgrade-channel.ts). Its
// EOF means the other side is gone (a SIGKILLed successor included).

/** The longest line either side takes (a `files` message lists paths of up to 108 bytes). */
const MAX_LINE = 1024 * 1024;

export class Channel<In extends { t: string }, Out extends SuccessorMessage | PredecessorMessage> {
  private closed = false;
  private error?: Error;

  /** `onClose` gets the socket's error, if one came before the close (the EOF of a dead peer is none). */
  constructor(
    private readonly sock: net.Socket,
    onMessage: (m: In) => void,
    onClose: (error?: Error) => void,
  ) {
    readJsonLines(sock, MAX_LINE, {
      line: (l) => {
        // a line that is not a message of ours (not JSON, no `t`) is ignored, as an unknown `t` is
        if (l.ok && typeof l.value === 'object' && l.value !== null && typeof (l.value as { t?: unknown }).t === 'string') onMessage(l.value as In);
      },
      tooLong: () => this.sock.destroy(new Error(`the other side sent a line longer than ${MAX_LINE} bytes`)),
    });
    sock.on('error', (e) => (this.error ??= e));
    sock.once('close', () => {
      this.closed = true;
      onClose(this.error);
    });
  }

  /** Resolves once the message is written (or could not be): a process about to exit waits for it. */
  send(m: Out): Promise<void> {
    if (this.closed || !this.sock.writable) return Promise.resolve();
    return new Promise((resolve) => this.sock.write(frame(m), () => resolve()));
  }

  close(): void {
    this.sock.end();
    this.sock.destroy();
  }
}
