import fs from 'node:fs';
import net from 'node:net';
import { native } from '../native';
import { unixSocketAnswers } from '../sockets/probe';
import { frame, readJsonLines } from '../contract/json-lines';
import { toControlRequest, type ControlReply, type ControlRequest } from '../contract/control';

const MAX_REQUEST = 64 * 1024;

/**
 * Answers one valid request: `reply` may be called later (once an operation is done); only
 * the first call counts. A connection closed meanwhile gets nothing.
 */
export type ControlHandler = (req: ControlRequest, reply: (r: ControlReply) => void) => void;

/**
 * The master's control socket: owner-only (0600 from creation, via the addon's bind), one
 * request per connection. A line that is no request (not JSON, not an object with a known
 * `cmd`) is answered {ok:false,error} here: the handler sees only valid requests.
 */
export class ControlServer {
  private server: net.Server;

  private constructor(
    public path: string,
    fd: number,
    handler: ControlHandler,
  ) {
    this.server = net.createServer((sock) => {
      let answered = false;
      const reply = (r: ControlReply) => {
        if (answered) return;
        answered = true;
        if (sock.writable) sock.end(frame(r));
      };
      sock.on('error', () => sock.destroy());
      const stop = readJsonLines(sock, MAX_REQUEST, {
        line: (l) => {
          stop();
          const req = l.ok ? toControlRequest(l.value) : { error: 'malformed request: not JSON' };
          if ('error' in req) reply({ ok: false, error: req.error });
          else handler(req, reply);
        },
        tooLong: () => sock.destroy(),
      });
    });
    this.server.listen({ fd });
  }

  /** Binds `path`; refuses when a live master answers there already. */
  static async open(path: string, handler: ControlHandler): Promise<ControlServer> {
    if (fs.existsSync(path)) {
      if (await unixSocketAnswers(path)) throw new Error(`another baton master is running for this config (its control socket ${path} answers)`);
      fs.rmSync(path, { force: true });
    }
    const fd = native.listenSocket(0, path, 0, 64, 0o600);
    return new ControlServer(path, fd, handler);
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
    if (unlink) fs.rmSync(this.path, { force: true });
  }
}
