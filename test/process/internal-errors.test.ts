// The master's catch-all (src/cli/internal-errors.ts, as `baton run` installs it), in a real
// Node process: a failed write to its own stderr is a counted log drop; an EPIPE from any other
// stream (a control or upgrade connection) is a bug and is logged as an internal error.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, tmpdir } from '../helpers/proc';

// the process writes to its stderr (closed by the test) until that is counted, then to a unix
// connection whose peer closed it, with no 'error' listener: the error reaches the catch-all
const SCRIPT = `
const net = require('node:net');
const { createLogger } = require(${JSON.stringify(path.join(ROOT, 'dist', 'log', 'logger.js'))});
const { reportInternalErrors } = require(${JSON.stringify(path.join(ROOT, 'dist', 'cli', 'internal-errors.js'))});
const [logFile, sockPath] = process.argv.slice(1);
const logger = createLogger({ level: 'info', format: 'text', file: logFile }, 'internal-errors');
reportInternalErrors(logger);
const done = (what) => process.stdout.write(JSON.stringify({ what, log: logger.sinkStatus() }) + '\\n');
const stderr = setInterval(() => {
  if (logger.sinkStatus().dropped > 0) {
    clearInterval(stderr);
    done('stderr');
    const server = net.createServer((s) => s.destroy()).listen(sockPath, () => {
      const c = net.connect({ path: sockPath, allowHalfOpen: true });
      const w = setInterval(() => c.write(Buffer.alloc(65536)), 10);
      process.once('uncaughtException', () => {
        clearInterval(w);
        server.close();
        setImmediate(() => done('connection'));
      });
    });
  } else process.stderr.write('a line for a closed stderr\\n');
}, 10);
`;

describe('the master catch-all', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  test('a failed write to stderr is counted, not logged; an EPIPE of another connection is logged as an internal error', async () => {
    dir = tmpdir();
    const logFile = path.join(dir, 'baton.log');
    const p = spawn(process.execPath, ['-e', SCRIPT, logFile, path.join(dir, 'peer.sock')], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stderr.destroy();
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<string>((resolve) => {
      timer = setTimeout(() => {
        p.kill('SIGKILL');
        resolve(`no result within 20 s: ${out}`);
      }, 20000);
    });
    try {
      const code = await Promise.race([exited, killed]);
      expect(code).toBe(0);
    } finally {
      clearTimeout(timer);
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
        await exited;
      }
    }
    const [stderr, conn] = out.trim().split('\n').map((l) => JSON.parse(l));
    expect(stderr).toMatchObject({ what: 'stderr', log: { dropped: expect.any(Number) } });
    expect(stderr.log.lastError.error).toMatch(/^(EPIPE|ECONNRESET|ERR_STREAM_DESTROYED)/);
    const log = fs.readFileSync(logFile, 'utf8');
    expect(log).not.toMatch(/internal error.*a line for a closed stderr/);
    expect(conn.what).toBe('connection');
    expect(log).toMatch(/internal error: Error: write EPIPE/);
    // nothing more was dropped: the connection's error was logged, not counted
    expect(conn.log.dropped).toBe(stderr.log.dropped);
  });
});
