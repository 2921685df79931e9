import type { Config } from '../config/types';
import type { LastExit, LastReload, LastUpgrade, LogSinkStatus, NotifyDropped, Phase, StatusReply, WorkerStatus } from '../contract/control';
import type { SlotExit } from '../pool/exit';
import type { Generation } from '../pool/generation';
import type { Worker } from '../pool/worker';
import { sampleGroups, TICKS_PER_SECOND, type GroupSample } from '../system/proc-sample';
import { describeListener, type Listener } from '../sockets/listeners';
import { describeCpus } from '../system/cpus';
import { VERSION } from '../version';

/** STATUS= for systemd and the status line of `baton status`. */
export function statusLine(phase: Phase, current: Generation | null): string {
  if (phase === 'stopping') return 'stopping';
  if (!current) return phase === 'starting' ? 'starting' : 'no workers (SIGWINCH); HUP starts a new generation';
  const ready = current.workers().filter((w) => w.state === 'ready').length;
  const tail = phase === 'running' || phase === 'starting' ? '' : `; ${phase}`;
  return `generation ${current.id}: ${ready}/${current.count} workers ready${tail}`;
}

/** Where status reads what the workers and the master cost (a fake in unit tests). */
export interface Sampler {
  groups(pgids: readonly number[]): Map<number, GroupSample>;
  self(): { rssBytes: number; cpuSeconds: number };
}

export const procSampler: Sampler = {
  groups: sampleGroups,
  self() {
    const u = process.cpuUsage();
    return { rssBytes: process.memoryUsage.rss(), cpuSeconds: (u.user + u.system) / 1e6 };
  },
};

/** A percent over less than this is mostly the clock tick's rounding: the baseline stays older. */
const MIN_INTERVAL_MS = 1000;

/**
 * The CPU reading of the previous status, per worker and for the master: a percent is over the
 * time since (at least MIN_INTERVAL_MS), or since the process started. Nothing runs between
 * two status requests.
 */
export class CpuMeter {
  private readonly last = new WeakMap<object, { seconds: number; at: number }>();

  percent(key: object, seconds: number, now: number, startedAt: number): number {
    const base = this.last.get(key) ?? { seconds: 0, at: startedAt };
    const ms = now - base.at;
    if (ms >= MIN_INTERVAL_MS) this.last.set(key, { seconds, at: now });
    if (ms <= 0) return 0;
    return Math.round(Math.max(0, ((seconds - base.seconds) * 1000) / ms) * 1000) / 10;
  }
}

const MASTER = {};

function lastExit(e: SlotExit): LastExit {
  return { code: e.code, signal: e.signal, at: new Date(e.at).toISOString(), why: e.why };
}

export interface StatusView {
  cfg: Config;
  phase: Phase;
  startedAt: number;
  current: Generation | null;
  generations: readonly Generation[];
  /** Since this master started (Pool.watchdogKills). */
  watchdogKills: number;
  listeners: Listener[];
  lastReload: LastReload | null;
  /** The reload or the upgrade in its soak: the new generation and when the soak ends (the master's clock, ms). */
  soak?: { of: 'reload' | 'upgrade'; generation: number; until: number };
  lastUpgrade: LastUpgrade | null;
  upgrade: StatusReply['upgrade']['state'];
  successorPid?: number;
  notifyDropped?: NotifyDropped;
  log: LogSinkStatus;
  sampler: Sampler;
  cpu: CpuMeter;
}

export function statusReply(v: StatusView, now = Date.now()): StatusReply {
  // one pass over /proc for every worker's group (each worker leads its own), on demand only
  const groups = v.sampler.groups(v.generations.flatMap((g) => g.workers().map((w) => w.pid).filter((pid) => pid > 0)));
  const worker = (g: Generation, w: Worker): WorkerStatus => {
    const s = groups.get(w.pid);
    const e = g.lastExit(w.slot);
    return {
      slot: w.slot,
      pid: w.pid,
      state: w.state,
      restarts: w.restarts,
      uptimeMs: now - w.startedAt,
      status: w.status,
      watchdogMs: w.watchdog.periodMs || undefined,
      memory: s && { rssBytes: s.rssBytes, pssBytes: s.pssBytes, processes: s.processes },
      cpu: s && { percent: v.cpu.percent(w, s.cpuTicks / TICKS_PER_SECOND, now, w.startedAt), seconds: s.cpuTicks / TICKS_PER_SECOND },
      lastExit: e && lastExit(e),
      recycling: w.recycling,
    };
  };
  const self = v.sampler.self();
  return {
    ok: true,
    name: v.cfg.name,
    version: VERSION,
    pid: process.pid,
    config: v.cfg.file,
    phase: v.phase,
    uptimeMs: now - v.startedAt,
    master: { rssBytes: self.rssBytes, cpuPercent: v.cpu.percent(MASTER, self.cpuSeconds, now, v.startedAt), cpuSeconds: Math.round(self.cpuSeconds * 100) / 100 },
    generation: v.current?.id ?? null,
    generations: v.generations.map((g) => ({
      id: g.id,
      state: g.state,
      count: g.count,
      watchdogKills: g.watchdogKills,
      recycles: { ...g.recycles },
      workers: g.workers().map((w) => worker(g, w)),
      backoff: g.backoff().map((b) => ({ slot: b.slot, nextStartAt: new Date(b.at).toISOString(), lastExit: lastExit(b.lastExit) })),
    })),
    workers: workersCount(v.cfg),
    watchdogKills: v.watchdogKills,
    listeners: v.listeners.map(describeListener),
    lastReload: v.lastReload,
    soak: v.soak && { of: v.soak.of, generation: v.soak.generation, endsAt: new Date(v.soak.until).toISOString() },
    notifyDropped: v.notifyDropped,
    upgrade: { state: v.upgrade, successorPid: v.successorPid, last: v.lastUpgrade },
    statusLine: statusLine(v.phase, v.current),
    // lines a failing log sink (closed pipe, full disk, journald gone) dropped
    log: v.log,
  };
}

function workersCount(cfg: Config): StatusReply['workers'] {
  const { count, countAuto } = cfg.workers;
  return countAuto ? { count: 'auto', resolved: count, auto: describeCpus(countAuto) } : { count, resolved: count };
}
