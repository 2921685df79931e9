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
  /** Requests begun on it: the sweep sees activity as a change of this count. */
  requests: number;
  /** The response to its latest request (HTTP/1 answers in order: when it is finished, all are). */
  res: http.ServerResponse | null;
  /** While draining: since when the sweeps have seen it idle; NaN until one has. */
  idleSince: number;
  /** `requests` at the last sweep. */
  seen: number;
}

/**
 * The per-request work is a map lookup and two stores (the Node adapter runs this in every
 * request of an unmodified app: bench section 9 has its cost against the same app on fd 3);
 * what is expensive (clock reads, the idle sweeps) happens only while draining.
 */
export class Drain {
  private readonly servers = new Set<net.Server>();
  private readonly conns = new Map<net.Socket, ConnState>();
  private draining = false;
  private stopped: Promise<void> | null = null;
  private finish: () => void = () => undefined;
  // one function each for every connection and request, not a closure apiece
  private readonly onConnection = (sock: net.Socket) => this.track(sock);
  private readonly onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const st = this.conns.get(req.socket);
    if (st) {
      st.requests++;
      st.res = res;
    }
    if (this.draining && !res.headersSent) res.setHeader('Connection', 'close');
  };
  private readonly onClose: (this: net.Socket) => void;

  constructor(private readonly idleGraceMs = 2000) {
    const drain = this;
    // called with the socket as `this`
    this.onClose = function (this: net.Socket) {
      drain.conns.delete(this);
      if (drain.draining) drain.maybeDone();
    };
  }

  /** Tracks `server`'s connections from now on (call it before the server listens). */
  add(server: net.Server): void {
    if (this.servers.has(server)) return;
    this.servers.add(server);
    server.on('connection', this.onConnection);
    // prepended, so the header is set before the application's handler writes anything
    if (server instanceof http.Server || server instanceof https.Server) server.prependListener('request', this.onRequest);
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
    this.conns.set(sock, { requests: 0, res: null, idleSince: NaN, seen: 0 });
    sock.on('close', this.onClose);
  }

  /**
   * Ends the connections idle for idleGraceMs, as the sweeps saw them: no request begun since
   * the last sweep and the latest answered. The grace counts from the first sweep that saw a
   * connection idle (the first runs when draining begins), so a client about to send on a
   * connection idle for long still has it: its request gets `Connection: close`.
   */
  private sweepIdle(): void {
    const now = Date.now();
    for (const [sock, st] of this.conns) {
      const busy = st.requests !== st.seen || (st.res !== null && !st.res.writableFinished && !st.res.destroyed);
      st.seen = st.requests;
      if (busy || Number.isNaN(st.idleSince)) st.idleSince = busy ? NaN : now;
      else if (now - st.idleSince >= this.idleGraceMs) sock.end();
    }
  }

  private maybeDone(): void {
    if (this.conns.size === 0) this.finish();
  }
}
