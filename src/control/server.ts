import fs from 'node:fs';
import net from 'node:net';
import { native } from '../native';
import { unixSocketAnswers } from '../sockets/probe';
import type { ControlReply, ControlRequest } from '../contract/control';

const MAX_REQUEST = 64 * 1024;

/**
 * The master's control socket: owner-only (0600 from creation, via the addon's bind), one
 * request per connection.
 */
export class ControlServer {
  private server: net.Server;

  private constructor(
    public path: string,
    fd: number,
    handler: (req: ControlRequest) => Promise<ControlReply>,
  ) {
    this.server = net.createServer((sock) => {
      let buf = '';
      sock.setEncoding('utf8');
      sock.on('error', () => sock.destroy());
      sock.on('data', (chunk: string) => {
        buf += chunk;
        if (buf.length > MAX_REQUEST) return sock.destroy();
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        sock.removeAllListeners('data');
        let req: ControlRequest;
        try {
          req = JSON.parse(buf.slice(0, nl));
        } catch {
          sock.end(JSON.stringify({ ok: false, error: 'malformed request' }) + '\n');
          return;
        }
        handler(req).then(
          (reply) => sock.writable && sock.end(JSON.stringify(reply) + '\n'),
          (e: Error) => sock.writable && sock.end(JSON.stringify({ ok: false, error: e.message }) + '\n'),
        );
      });
    });
    this.server.listen({ fd });
  }

  /** Binds `path`; refuses when a live master answers there already. */
  static async open(path: string, handler: (req: ControlRequest) => Promise<ControlReply>): Promise<ControlServer> {
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
