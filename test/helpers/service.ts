// A baton service as systemd runs one: the master under test/helpers/subreaper.py, which stands
// in for PID 1. A successor master (it double-forks) is re-parented to the subreaper, every
// process is reaped there, and the subreaper exits only once nothing of the service is left:
// its exit proves nothing was orphaned.
import fs from 'node:fs';
import path from 'node:path';
import type { StatusReply } from '../../src/contract/control';
import { readPidfile } from '../../src/system/pidfile';
import { childrenOf, portOf, ready, startMaster, tmpdir, writeConfig, type Master } from './proc';

const SUBREAPER = ['python3', path.join(__dirname, 'subreaper.py')];

export interface Service {
  /** The subreaper, started as a Master: its pid is the subreaper's, its output every master's log, its status() the current master's. */
  m: Master;
  dir: string;
  cfg: string;
  runDir: string;
  pidfile: string;
  /** The status once the first generation was ready. */
  first: StatusReply;
  /** The port of the first master's 'http' listener (throws if it has none). */
  readonly port: number;
  /** The master the pidfile names now. */
  master(): number;
  status(): Promise<StatusReply>;
  /** Writes the config back as it was at start, changed by `change`. */
  rewrite(change: (cfg: Record<string, any>) => void): void;
}

export interface ServiceOptions {
  env?: NodeJS.ProcessEnv;
  /** The folder of the config and the runtime folder (a new tmpdir() by default). */
  dir?: string;
  /** Another bin/baton (an installed copy). */
  baton?: string;
  readyTimeoutMs?: number;
}

/** Writes `config` into a folder and starts its master under a subreaper; resolves once the first generation is ready. */
export async function startService(config: Record<string, unknown>, opts: ServiceOptions = {}): Promise<Service> {
  const dir = opts.dir ?? tmpdir();
  const cfg = writeConfig(dir, config);
  const original = fs.readFileSync(cfg, 'utf8');
  const m = startMaster(cfg, { env: opts.env, wrapper: SUBREAPER, baton: opts.baton });
  const pidfile = path.join(m.runtimeDir, 'baton.pid');
  const svc = {
    m,
    dir,
    cfg,
    runDir: m.runtimeDir,
    pidfile,
    first: undefined as unknown as StatusReply,
    get port() {
      return portOf(svc.first);
    },
    master: () => {
      const pid = readPidfile(pidfile);
      if (pid === undefined) throw new Error(`no pidfile ${pidfile}`);
      return pid;
    },
    status: () => m.status(),
    rewrite: (change: (cfg: Record<string, any>) => void) => {
      const next = JSON.parse(original);
      change(next);
      fs.writeFileSync(cfg, JSON.stringify(next, null, 2));
    },
  };
  try {
    svc.first = await ready(m, opts.readyTimeoutMs);
  } catch (e) {
    await stopService(svc);
    throw e;
  }
  return svc;
}

/** Every process below `pid`, parents before their children. */
export const descendants = (pid: number): number[] => childrenOf(pid).flatMap((c) => [c, ...descendants(c)]);

/** Whether `p` settles within `ms`. */
const within = (p: Promise<unknown>, ms: number): Promise<boolean> => {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  return Promise.race([p.then(() => true), late]).finally(() => clearTimeout(timer));
};

function signal(target: number, sig: NodeJS.Signals): void {
  try {
    process.kill(target, sig);
  } catch {
    /* gone, or not a process group */
  }
}

/**
 * After a test, passed or failed: the service stopped, nothing of it left. First the masters
 * (SIGTERM to each process right under the subreaper: the masters, a successor among them, and
 * whatever a dead master left there; SIGCONT too, for one a test stopped), which stop their
 * workers; after `graceMs`, SIGKILL to every process under the subreaper and to its process
 * group (a worker's). The subreaper exits by itself once nothing is left under it; one that
 * does not is killed, and the clean-up throws naming what was left. Never the subreaper
 * first: the masters would run on, re-parented out of the test's reach.
 */
export async function stopService(svc: Pick<Service, 'm'> | undefined, graceMs = 20000): Promise<void> {
  const m = svc?.m;
  if (!m || m.proc.exitCode !== null || m.proc.signalCode !== null) return;
  for (const p of childrenOf(m.pid)) {
    signal(p, 'SIGTERM');
    signal(p, 'SIGCONT');
  }
  if (await within(m.exited, graceMs)) return;
  for (const p of descendants(m.pid)) {
    signal(-p, 'SIGKILL');
    signal(p, 'SIGKILL');
  }
  if (await within(m.exited, 5000)) return;
  const left = descendants(m.pid);
  m.proc.kill('SIGKILL');
  await m.exited;
  throw new Error(`the service left processes behind that SIGKILL did not end: ${left.join(', ')}`);
}
