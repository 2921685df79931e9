import net from 'node:net';
import type { MasterLocation } from '../config/load';
import { isAlive, readPidfile } from '../master/pidfile';
import { unixSocketAnswers } from '../sockets/probe';
import { controlSocketPath, type ControlReply, type ControlRequest } from './protocol';

export class NoMasterError extends Error {
  override name = 'NoMasterError';
}

/** Sends one request over the control socket and waits for the answer (reload can take a while). */
export function request(socketPath: string, req: ControlRequest): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socketPath);
    let buf = '';
    c.setEncoding('utf8');
    c.once('connect', () => c.write(JSON.stringify(req) + '\n'));
    c.on('data', (d: string) => (buf += d));
    c.once('error', (e: NodeJS.ErrnoException) => reject(e));
    c.once('close', () => {
      const line = buf.split('\n')[0];
      if (!line) return reject(new Error('the master closed the control connection without answering'));
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`malformed answer from the master: ${line.slice(0, 200)}`));
      }
    });
  });
}

export type Target = { kind: 'socket'; path: string } | { kind: 'pid'; pid: number; why: string };

/** Finds the master: its control socket if it answers, else the pid in the pidfile. */
export async function findMaster(cfg: MasterLocation): Promise<Target> {
  const sock = controlSocketPath(cfg.runtimeDir);
  if (await unixSocketAnswers(sock)) return { kind: 'socket', path: sock };
  const why = `nothing answers on the control socket ${sock}`;
  const pid = readPidfile(cfg.pidfile);
  if (pid !== undefined && isAlive(pid)) return { kind: 'pid', pid, why };
  throw new NoMasterError(
    `no baton master is running for ${cfg.file} (${why}; ${pid === undefined ? `no pidfile at ${cfg.pidfile}` : `pid ${pid} from ${cfg.pidfile} is not running`})`,
  );
}

export async function waitForExit(pid: number, pollMs = 50): Promise<void> {
  while (isAlive(pid)) await new Promise((r) => setTimeout(r, pollMs));
}
