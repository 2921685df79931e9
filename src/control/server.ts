import fs from 'node:fs';
import net from 'node:net';
import { native, socketFd } from '../native';
import { unixSocketAnswers } from '../sockets/probe';
import { frame, readJsonLines } from '../contract/json-lines';
import { toControlRequest, type ControlReply, type ControlRequest } from '../contract/control';

const MAX_REQUEST = 64 * 1024;
/** Connections open at once; each holds an fd and, while its answer is unread, that answer. */
export const MAX_CONNECTIONS = 32;
/** How long a connection may take to send its request, and to take its answer. */
export const IDLE_MS = 10_000;
/** What the control socket turned away is logged at most this often. */
const REPORT_EVERY_MS = 60_000;

/**
 * Answers one valid request: `reply` may be called later (once an operation is done); only
 * the first call counts. A connection closed meanwhile gets nothing.
 */
export type ControlHandler = (req: ControlRequest, reply: (r: ControlReply) => void) => void;

/**
 * The master's control socket: owner-only (0600 from creation, via the addon's bind), one
 * request per connection. A line that is no request (not JSON, not an object with a known
 * `cmd`) is answered {ok:false,error} here: the handler sees only valid requests.
 *
 * Only the master's uid can connect, which under DynamicUser= includes the workers, so what
 * connections can hold is bounded: at most MAX_CONNECTIONS open (a new one closes the oldest
 * that has sent no request, else the oldest not reading its answer; when every one waits for
 * an answer, the new one is refused), a request within IDLE_MS of connecting and at most
 * MAX_REQUEST long, its answer taken within IDLE_MS (a client that does not read holds no
 * answer in the master's memory for longer). A connection waiting for a long operation's
 * answer is not idle. A request whose client has
 * already gone (one that timed out while the master was stopped) is dropped unread: a
 * reload or upgrade nobody waits for any more does not happen.
 */
export class ControlServer {
  private server: net.Server;
  /** Open connections, oldest first: no request yet, waiting for the answer, or the answer sent (not read yet). */
  private readonly open = new Map<net.Socket, { state: 'idle' | 'waiting' | 'answered' }>();
  private readonly turnedAway: Tally;

  private constructor(
    public path: string,
    fd: number,
    private readonly handler: ControlHandler,
    warn: (message: string) => void,
  ) {
    this.turnedAway = new Tally((counts) => warn(`control socket: ${counts}`));
    this.server = net.createServer((sock) => this.accept(sock));
    this.server.listen({ fd });
  }

  private accept(sock: net.Socket): void {
    sock.on('error', () => sock.destroy());
    if (this.open.size >= MAX_CONNECTIONS && !this.makeRoom()) {
      this.turnedAway.add(`connection(s) refused: ${MAX_CONNECTIONS} open, each waiting for an answer`);
      sock.end(frame({ ok: false, error: `too many control connections (${MAX_CONNECTIONS} open, each waiting for an answer): try again later` }), () => sock.destroy());
      return;
    }
    const conn: { state: 'idle' | 'waiting' | 'answered' } = { state: 'idle' };
    this.open.set(sock, conn);
    const expire = (why: string) =>
      setTimeout(() => {
        this.turnedAway.add(why);
        sock.destroy();
      }, IDLE_MS);
    let timer = expire(`connection(s) closed for sending no request within ${IDLE_MS / 1000} s`);
    sock.once('close', () => {
      clearTimeout(timer);
      this.open.delete(sock);
    });
    let answered = false;
    const reply = (r: ControlReply) => {
      if (answered) return;
      answered = true;
      if (!sock.writable) return;
      conn.state = 'answered';
      timer = expire(`connection(s) closed for not reading the answer within ${IDLE_MS / 1000} s`);
      // closed once the kernel has it all: the client reads it, then the end
      sock.end(frame(r), () => sock.destroy());
    };
    const stop = readJsonLines(sock, MAX_REQUEST, {
      line: (l) => {
        stop();
        conn.state = 'waiting';
        clearTimeout(timer);
        const req = l.ok ? toControlRequest(l.value) : { error: 'malformed request: not JSON' };
        if ('error' in req) return reply({ ok: false, error: req.error });
        if (native.peerGone(socketFd(sock))) {
          this.turnedAway.add(`${req.cmd} request(s) dropped, not acted on: the client had gone before the master read it (it timed out?)`);
          return void sock.destroy();
        }
        this.handler(req, reply);
      },
      tooLong: () => {
        this.turnedAway.add(`connection(s) closed for a request longer than ${MAX_REQUEST} bytes`);
        sock.destroy();
      },
    });
  }

  /**
   * Makes room: closes the oldest connection that has not sent a request, else the oldest
   * whose answer is not read yet. One waiting for an answer is kept; false if all are.
   */
  private makeRoom(): boolean {
    for (const state of ['idle', 'answered'] as const) {
      for (const [sock, conn] of this.open) {
        if (conn.state !== state) continue;
        this.turnedAway.add(`${state === 'idle' ? 'connection(s) with no request yet' : 'connection(s) not reading their answer'} closed to make room (at most ${MAX_CONNECTIONS} open)`);
        this.open.delete(sock);
        sock.destroy();
        return true;
      }
    }
    return false;
  }

  /** Binds `path`; refuses when a live master answers there already. `warn` hears what was turned away. */
  static async open(path: string, handler: ControlHandler, warn: (message: string) => void): Promise<ControlServer> {
    if (fs.existsSync(path)) {
      if (await unixSocketAnswers(path)) throw new Error(`another baton master is running for this config (its control socket ${path} answers)`);
      fs.rmSync(path, { force: true });
    }
    const fd = native.listenSocket(0, path, 0, 64, 0o600);
    return new ControlServer(path, fd, handler, warn);
  }

  /** Moves the socket file to `finalPath` in one step (a successor taking over the control socket). */
  adopt(finalPath: string): void {
    fs.renameSync(this.path, finalPath);
    this.path = finalPath;
  }

  /**
   * Stops answering. `unlink: false` leaves the file alone: after a hand-over the path is the
   * successor's (it renames its own socket over it; an inode check cannot tell them apart on
   * file systems that reuse inode numbers at once).
   */
  close(unlink = true): void {
    this.server.close();
    this.turnedAway.close();
    if (unlink) fs.rmSync(this.path, { force: true });
  }
}

/**
 * Counts what is turned away, by kind: the first at once, then at most once per
 * REPORT_EVERY_MS with the counts since (a flood is one line a minute).
 */
class Tally {
  private readonly counts = new Map<string, number>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly report: (counts: string) => void) {}

  add(what: string): void {
    this.counts.set(what, (this.counts.get(what) ?? 0) + 1);
    if (!this.timer) this.flush();
  }

  close(): void {
    clearTimeout(this.timer);
    this.flush();
    clearTimeout(this.timer);
  }

  private readonly flush = (): void => {
    this.timer = undefined;
    if (this.counts.size === 0) return;
    this.report([...this.counts].map(([what, n]) => `${n} ${what}`).join('; '));
    this.counts.clear();
    this.timer = setTimeout(this.flush, REPORT_EVERY_MS).unref();
  };
}
