// A graceful stop that loses no request, for servers already serving: what baton/worker's
// serve() and the Node adapter (adapt/node-preload) do on SIGTERM.
//
// The listeners close; a request in flight finishes; an open keep-alive connection's next
// request is answered with `Connection: close` (the client then knows not to send another on
// it); a connection that sends nothing is closed only once it has been idle for idleGraceMs.
// Closing an idle keep-alive connection at once, as http.Server#close does since Node 19,
// loses the request a client is sending on it at that moment.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

interface ConnState {
  active: number;
  lastActive: number;
}

export class Drain {
  private readonly servers = new Set<net.Server>();
  private readonly conns = new Map<net.Socket, ConnState>();
  private draining = false;
  private stopped: Promise<void> | null = null;
  private finish: () => void = () => undefined;

  constructor(private readonly idleGraceMs = 2000) {}

  /** Tracks `server`'s connections from now on (call it before the server listens). */
  add(server: net.Server): void {
    if (this.servers.has(server)) return;
    this.servers.add(server);
    server.on('connection', (sock: net.Socket) => this.track(sock));
    if (server instanceof http.Server || server instanceof https.Server) {
      // prepended, so the header is set before the application's handler writes anything
      server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
        const st = this.conns.get(req.socket);
        if (st) {
          st.active++;
          st.lastActive = Date.now();
          res.once('close', () => {
            st.active--;
            st.lastActive = Date.now();
          });
        }
        if (this.draining && !res.headersSent) res.setHeader('Connection', 'close');
      });
    }
  }

  /** Connections open now. */
  get open(): number {
    return this.conns.size;
  }

  get stopping(): boolean {
    return this.draining;
  }

  /** Stops every server added; resolves once no connection is left. */
  stop(): Promise<void> {
    if (this.stopped) return this.stopped;
    this.draining = true;
    this.stopped = new Promise<void>((resolve) => (this.finish = resolve));
    let http1 = false;
    for (const s of this.servers) {
      // net.Server#close: http.Server#close would also close the idle keep-alive connections
      if (s.listening) net.Server.prototype.close.call(s);
      if (s instanceof http.Server || s instanceof https.Server) http1 = true;
    }
    let sweeper: NodeJS.Timeout | null = null;
    if (http1) {
      this.sweepIdle();
      sweeper = setInterval(() => this.sweepIdle(), Math.max(10, Math.min(250, this.idleGraceMs / 4)));
    }
    this.maybeDone();
    return this.stopped.then(() => {
      if (sweeper) clearInterval(sweeper);
    });
  }

  private track(sock: net.Socket): void {
    if (this.conns.has(sock)) return;
    this.conns.set(sock, { active: 0, lastActive: Date.now() });
    sock.once('close', () => {
      this.conns.delete(sock);
      if (this.draining) this.maybeDone();
    });
  }

  private sweepIdle(): void {
    const now = Date.now();
    for (const [sock, st] of this.conns) {
      if (st.active === 0 && now - st.lastActive >= this.idleGraceMs) sock.end();
    }
  }

  private maybeDone(): void {
    if (this.conns.size === 0) this.finish();
  }
}
