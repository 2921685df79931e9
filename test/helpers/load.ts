import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { waitFor } from './proc';

export interface LoadStats {
  ok: number;
  failed: number;
  keepalive: { ok: number; failed: number };
  fresh: { ok: number; failed: number };
  errors: Record<string, number>;
  pids: Record<string, number>;
}

export interface Load {
  proc: ChildProcess;
  /** Requests answered so far (from the progress lines). */
  okSoFar(): number;
  stop(): Promise<LoadStats>;
  /**
   * Stops it; throws unless every request was answered (0 failed, no error) and each kind of
   * client it ran had at least `min` answers: a check of "0 failed" on little or no traffic
   * proves nothing.
   */
  finish(min?: number): Promise<LoadStats>;
}

/** The least a load check accepts per kind of client (keep-alive, new connection). */
export const MIN_ANSWERED = 50;

/** Starts the load generator in its own process. */
export function startLoad(port: number, keepalive = 4, fresh = 4): Load {
  const proc = spawn(process.execPath, [path.join(__dirname, 'load-client.js'), String(port), String(keepalive), String(fresh)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let okSoFar = 0;
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d: Buffer) => {
    const m = /ok=(\d+) failed=\d+\n$/.exec(d.toString());
    if (m) okSoFar = Number(m[1]);
  });
  const done = new Promise<LoadStats>((resolve, reject) =>
    proc.once('exit', () => {
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`load generator printed no stats: ${out}`));
      }
    }),
  );
  const stop = () => {
    proc.kill('SIGTERM');
    return done;
  };
  return {
    proc,
    okSoFar: () => okSoFar,
    stop,
    finish: async (min = MIN_ANSWERED) => {
      const stats = await stop();
      const short = [...(keepalive > 0 ? ['keepalive' as const] : []), ...(fresh > 0 ? ['fresh' as const] : [])].filter((k) => stats[k].ok < min);
      if (stats.failed || Object.keys(stats.errors).length || short.length) {
        throw new Error(
          `load: ${stats.failed} failed ${JSON.stringify(stats.errors)}; answered: keep-alive ${stats.keepalive.ok}, new-connection ${stats.fresh.ok}` +
            (short.length ? ` (fewer than ${min}: ${short.join(', ')})` : ''),
        );
      }
      return stats;
    },
  };
}

/** Waits until the load has had at least `n` more answers than now. */
export async function flowing(load: Load, n = 50): Promise<void> {
  const start = load.okSoFar();
  await waitFor(`${n} more answered requests`, () => load.okSoFar() >= start + n, 30000);
}
