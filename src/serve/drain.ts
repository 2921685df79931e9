// A graceful stop that loses no request, for servers already serving: what baton/worker's
// serve() and the Node adapter (adapt/node-preload) do on SIGTERM.
//
// The listeners close; a request in flight finishes; an open keep-alive connection's next
// request is answered with `Connection: close` (the client then knows not to send another on
// it); a connection that sends nothing is closed once idleGraceMs have passed since the stop.
// Closing an idle keep-alive connection at once, as http.Server#close does since Node 19,
// loses the request a client is sending on it at that moment.
//
// Until the stop, a new connection costs a set's add and delete, and a request nothing:
// the Node adapter puts this in every unmodified app, where a state per connection and a
// listener per request and per socket cost 9 % of a hello-world's new-connection throughput
// (bench section 9). Node's servers count their connections, and HTTP servers (Node >= 18.2)
// know which connections have a request in flight; the set is for those that never sent one.
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { notifyIfAny } from './lifecycle';

type Http1 = http.Server | https.Server;
const isHttp1 = (s: net.Server): s is Http1 => s instanceof http.Server || s instanceof https.Server;

export class Drain {
  private readonly servers = new Set<net.Server>();
  /** The HTTP connections open. */
  private readonly sockets = new Set<net.Socket>();
  private stopped: Promise<void> | null = null;
  private readonly onConnection: (sock: net.Socket) => void;

  constructor(private readonly idleGraceMs = 2000) {
    // one function for every socket, not a closure each; a socket kept after it closed would
    // outlive the young generation (measured: slower than removing it at once)
    const sockets = this.sockets;
    function onClose(this: net.Socket): void {
      sockets.delete(this);
    }
    this.onConnection = (sock) => {
      sockets.add(sock);
      sock.on('close', onClose);
    };
  }

  /** Stops `server` too when the time comes (call it before the server listens). */
  add(server: net.Server): void {
    if (this.servers.has(server)) return;
    this.servers.add(server);
    // an HTTP server's only (serve() hands the connections of its other sockets to it)
    if (isHttp1(server)) server.on('connection', this.onConnection);
  }

  /** Connections open now (net.Server's own count: `getConnections()` answers only on the next tick). */
  get open(): number {
    let n = 0;
    for (const s of this.servers) n += (s as unknown as { _connections?: number })._connections ?? 0;
    return n;
  }

  get stopping(): boolean {
    return this.stopped !== null;
  }

  /** Stops every server added; resolves once no connection is left. */
  stop(): Promise<void> {
    if (this.stopped) return this.stopped;
    const http1 = [...this.servers].filter(isHttp1);
    for (const s of http1) {
      // prepended, so the header is set before the application's handler writes anything
      s.prependListener('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
        if (!res.headersSent) res.setHeader('Connection', 'close');
      });
    }
    // net.Server#close: http.Server#close would also close the idle keep-alive connections;
    // its callback runs once the last connection is gone (at once when the server was closed)
    const closed = [...this.servers].map((s) => new Promise<void>((resolve) => net.Server.prototype.close.call(s, () => resolve())));
    let sweeper: NodeJS.Timeout | null = null;
    const grace = setTimeout(() => {
      // from now on, a connection with no request in flight is closed: it had the grace to send
      // one. Node's idle list has only connections that sent a request; the others: bytesRead
      const sweep = () => {
        http1.forEach((s) => s.closeIdleConnections());
        for (const sock of this.sockets) if (sock.bytesRead === 0) sock.end();
      };
      sweep();
      sweeper = setInterval(sweep, Math.max(10, Math.min(250, this.idleGraceMs / 4)));
    }, this.idleGraceMs);
    // what `baton status` shows of a draining worker (long-lived connections keep it there):
    // when the stop begins, then every second
    const report = () => notifyIfAny({ STATUS: `stopping: ${this.open} connection(s) open` });
    report();
    const reporter = setInterval(report, 1000);
    this.stopped = Promise.all(closed).then(() => {
      clearTimeout(grace);
      clearInterval(reporter);
      if (sweeper) clearInterval(sweeper);
    });
    return this.stopped;
  }
}
