import net from 'node:net';

// The private channel between a predecessor and its successor: a socketpair, one JSON
// object per line. Its EOF means the other side is gone (a SIGKILLed successor included).

export type SuccessorMessage =
  | { t: 'hello'; pid: number }
  | { t: 'worker'; pid: number }
  /** Files the successor made (its control socket, unix listeners' files, its pidfile's name): a dead successor's are the predecessor's to remove. */
  | { t: 'files'; sockets: string[]; pidfile?: string }
  | { t: 'ready'; generation: number }
  | { t: 'failed'; reason: string };

export type PredecessorMessage = { t: 'confirm' } | { t: 'abort'; reason: string };

/** One message as it travels on the channel. */
export function frame(m: SuccessorMessage | PredecessorMessage): string {
  return JSON.stringify(m) + '\n';
}

export class Channel<In, Out> {
  private buf = '';
  private closed = false;

  constructor(
    private readonly sock: net.Socket,
    onMessage: (m: In) => void,
    onClose: () => void,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        try {
          onMessage(JSON.parse(line) as In);
        } catch {
          /* not ours: ignore */
        }
      }
    });
    sock.on('error', () => undefined);
    sock.once('close', () => {
      this.closed = true;
      onClose();
    });
  }

  /** Resolves once the message is written (or could not be): a process about to exit waits for it. */
  send(m: Out): Promise<void> {
    if (this.closed || !this.sock.writable) return Promise.resolve();
    return new Promise((resolve) => this.sock.write(frame(m as SuccessorMessage | PredecessorMessage), () => resolve()));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.sock.end();
    this.sock.destroy();
  }
}
