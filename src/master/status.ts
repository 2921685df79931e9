import type { Config } from '../config/types';
import type { LastReload, LastUpgrade, LogSinkStatus, NotifyDropped, Phase, StatusReply } from '../contract/control';
import type { Generation } from '../pool/generation';
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
  lastUpgrade: LastUpgrade | null;
  upgrade: StatusReply['upgrade']['state'];
  successorPid?: number;
  notifyDropped?: NotifyDropped;
  log: LogSinkStatus;
}

export function statusReply(v: StatusView, now = Date.now()): StatusReply {
  return {
    ok: true,
    name: v.cfg.name,
    version: VERSION,
    pid: process.pid,
    config: v.cfg.file,
    phase: v.phase,
    uptimeMs: now - v.startedAt,
    generation: v.current?.id ?? null,
    generations: v.generations.map((g) => ({
      id: g.id,
      state: g.state,
      count: g.count,
      watchdogKills: g.watchdogKills,
      workers: g.workers().map((w) => ({
        slot: w.slot,
        pid: w.pid,
        state: w.state,
        restarts: w.restarts,
        uptimeMs: now - w.startedAt,
        status: w.status,
        watchdogMs: w.watchdog.periodMs || undefined,
      })),
    })),
    workers: workersCount(v.cfg),
    watchdogKills: v.watchdogKills,
    listeners: v.listeners.map(describeListener),
    lastReload: v.lastReload,
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
