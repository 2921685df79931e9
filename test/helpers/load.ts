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
}

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
  return {
    proc,
    okSoFar: () => okSoFar,
    stop: () => {
      proc.kill('SIGTERM');
      return done;
    },
  };
}

/** Waits until the load has had at least `n` more answers than now. */
export async function flowing(load: Load, n = 50): Promise<void> {
  const start = load.okSoFar();
  await waitFor(`${n} more answered requests`, () => load.okSoFar() >= start + n, 30000);
}
