// The metrics endpoint (metrics.listen): GET /metrics over HTTP on a tcp or unix socket. Loaded
// by the master only when configured. Nothing here can hold the master's loop: the answer is
// built at once from what the master hands over, and written as Node writes any socket (a
// scraper that does not read only fills its own socket's buffer); connections are few and
// short-lived (timeouts, a cap), so a stranger cannot pile them up either.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { prepareFolder } from '../system/folders';
import type { ListenerSpec } from '../config/types';
import { clearStaleSocket } from '../sockets/probe';
import { render, type Family } from './exposition';

const MAX_CONNECTIONS = 16;
/** An answer is built at most this often (it samples /proc): scrapers, however many and fast, share it. */
const FRESH_MS = 1000;
/** A request must arrive whole within this; an idle keep-alive connection is closed after it. */
const TIMEOUT_MS = 10_000;
/** A successor binds the address its predecessor just closed (at the hand-over): it retries this long. */
const BIND_RETRY_MS = 5_000;

export class MetricsServer {
  private readonly server: http.Server;
  /** Scrapes answered, for the log at close. */
  scrapes = 0;
  private cached?: { at: number; body: string };
  /** The unix socket file this server bound (its device and inode): close() removes only that. */
  private bound?: { dev: number; ino: number };

  private constructor(
    readonly spec: ListenerSpec,
    families: () => Family[],
    private readonly warn: (m: string) => void,
  ) {
    // Node checks headersTimeout and requestTimeout only this often (30 s by default)
    this.server = http.createServer({ connectionsCheckingInterval: 1000 }, (req, res) => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        return;
      }
      const url = (req.url ?? '/').split('?')[0];
      if (url !== '/metrics') {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('baton: the metrics are at /metrics\n');
        return;
      }
      let body: string;
      try {
        if (!this.cached || Date.now() - this.cached.at >= FRESH_MS) this.cached = { at: Date.now(), body: render(families()) };
        body = this.cached.body;
      } catch (e) {
        this.warn(`metrics: cannot build the answer: ${(e as Error).message}`);
        res.writeHead(500).end();
        return;
      }
      this.scrapes++;
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    this.server.maxConnections = MAX_CONNECTIONS;
    this.server.headersTimeout = TIMEOUT_MS;
    this.server.requestTimeout = TIMEOUT_MS;
    this.server.keepAliveTimeout = TIMEOUT_MS;
    this.server.setTimeout(TIMEOUT_MS, (s) => s.destroy());
  }

  /** Listening on `spec`; a unix socket file is made 0660 and replaced when stale (another master's that left it). */
  static async open(spec: ListenerSpec, families: () => Family[], warn: (m: string) => void): Promise<MetricsServer> {
    const m = new MetricsServer(spec, families, warn);
    const until = Date.now() + BIND_RETRY_MS;
    for (;;) {
      try {
        await m.listen();
        return m;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || Date.now() > until) throw new Error(`metrics.listen ${spec.text}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private listen(): Promise<void> {
    const spec = this.spec;
    return new Promise((resolve, reject) => {
      // each attempt's listeners go with it: retries must not pile them up
      const failed = (e: Error) => {
        this.server.off('listening', done);
        reject(e);
      };
      const done = () => {
        this.server.off('error', failed);
        if (spec.kind === 'unix') {
          const st = fs.lstatSync(spec.path);
          this.bound = { dev: st.dev, ino: st.ino };
        }
        resolve();
      };
      if (spec.kind === 'tcp') {
        this.server.once('error', failed).once('listening', done);
        return void this.server.listen({ host: spec.host, port: spec.port, exclusive: true, ipv6Only: false });
      }
      // as a unix listener's: a missing folder is made (0755), a symlink on the way followed only if root's or baton's user's
      try {
        prepareFolder(path.dirname(spec.path), { leafMode: 0o755, ownLeaf: false, anyFolder: true });
      } catch (e) {
        return reject(e);
      }
      // a socket file nobody answers on (a master that was killed) is in the way: replaced
      void clearStaleSocket(spec.path).then((found) => {
        if (found === 'live') return reject(Object.assign(new Error(`${spec.path}: another process answers on it`), { code: 'EADDRINUSE' }));
        this.server.once('error', failed).once('listening', done);
        // bind() makes the file with the umask's mode: 0660, and no chmod that could follow a
        // name swapped meanwhile (a primary's listen() binds synchronously)
        const umask = process.umask(0o117);
        try {
          this.server.listen({ path: spec.path, exclusive: true });
        } finally {
          process.umask(umask);
        }
      }, reject);
    });
  }

  /** The address it listens on: "127.0.0.1:9464" (the port the kernel picked for 0), or the path. */
  get address(): string {
    const a = this.server.address();
    if (typeof a === 'string' || a === null) return this.spec.text;
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  /** Stops listening at once; answers under way finish. Its unix socket file goes. */
  close(): void {
    this.server.close();
    this.server.closeIdleConnections?.();
    // only the file it bound: after a hand-over the name may be the successor's socket
    if (this.spec.kind === 'unix' && this.bound) {
      try {
        const st = fs.lstatSync(this.spec.path);
        if (st.dev === this.bound.dev && st.ino === this.bound.ino) fs.unlinkSync(this.spec.path);
      } catch {
        /* gone */
      }
    }
  }
}
