// What the metrics endpoint says: `baton status`'s answer and the master's counters, as metric
// families with stable names (docs/contract.md, "Metrics"). Per-worker series are labelled by
// generation and slot, not pid: a restart does not start a new series.
import fs from 'node:fs';
import type { Phase, StatusReply } from '../contract/control';
import type { Counters } from './counters';
import { histogramSamples, type Family } from './exposition';

const PHASES: readonly Phase[] = ['starting', 'unconfirmed', 'running', 'reloading', 'upgrading', 'side-by-side', 'stopping'];
const WORKER_STATES = ['starting', 'ready', 'stopping'] as const;
const RESULTS = ['ok', 'failed', 'reverted'] as const;

const gauge = (name: string, help: string, samples: Family['samples']): Family => ({ name, help, type: 'gauge', samples });
const counter = (name: string, help: string, samples: Family['samples']): Family => ({ name, help, type: 'counter', samples });

export function families(s: StatusReply, c: Counters): Family[] {
  const workers = s.generations.flatMap((g) => g.workers.filter((w) => w.state !== 'exited').map((w) => ({ g, w })));
  // one series per slot: during a recycle (or a TTOU then TTIN) a slot has two workers for a
  // moment; the one that holds it (ready, not being recycled) speaks for it
  const holders = new Map<string, (typeof workers)[number]>();
  const rank = (w: (typeof workers)[number]['w']) => (w.state === 'ready' && !w.recycling ? 0 : w.state === 'ready' ? 1 : w.state === 'starting' ? 2 : 3);
  for (const x of workers) {
    const key = `${x.g.id}/${x.w.slot}`;
    const held = holders.get(key);
    if (!held || rank(x.w) < rank(held.w)) holders.set(key, x);
  }
  const per = (pick: (w: (typeof workers)[number]['w']) => number | null | undefined) =>
    [...holders.values()].flatMap(({ g, w }) => {
      const v = pick(w);
      return v === undefined || v === null ? [] : [{ labels: { generation: g.id, slot: w.slot }, value: v }];
    });
  return [
    gauge('baton_info', 'The baton version the master runs (always 1).', [{ labels: { version: s.version, name: s.name }, value: 1 }]),
    gauge('baton_phase', 'The master\'s phase: 1 for the one it is in.', PHASES.map((p) => ({ labels: { phase: p }, value: p === s.phase ? 1 : 0 }))),
    gauge('baton_generation', 'The serving generation\'s number (0: none, after WINCH or before the first is ready).', [{ value: s.generation ?? 0 }]),
    gauge('baton_generations', 'Generations by state.', ['starting', 'serving', 'draining', 'failed'].map((st) => ({ labels: { state: st }, value: s.generations.filter((g) => g.state === st).length }))),
    gauge('baton_workers', 'Worker processes by state, every generation.', WORKER_STATES.map((st) => ({ labels: { state: st }, value: workers.filter(({ w }) => w.state === st).length }))),
    gauge('baton_workers_wanted', 'The serving generation\'s worker count (workers.count, TTIN/TTOU).', [{ value: s.generations.find((g) => g.id === s.generation)?.count ?? 0 }]),
    gauge('baton_worker_resident_memory_bytes', 'RSS of each worker\'s process group (every process in it), as status samples it.', per((w) => w.memory?.rssBytes)),
    gauge('baton_worker_pss_bytes', 'PSS of each worker\'s process group (shared pages split).', per((w) => w.memory?.pssBytes)),
    counter('baton_worker_cpu_seconds_total', 'CPU time (user + system) of the processes now in each worker\'s process group.', per((w) => w.cpu?.seconds)),
    counter('baton_worker_restarts_total', 'Restarts of each worker slot after a crash or a hang.', per((w) => w.restarts)),
    counter('baton_worker_exits_total', 'Worker exits by reason: crash, watchdog, memory and age (recycled), reload, stop, resize.', [...c.workerExits].sort().map(([reason, n]) => ({ labels: { reason }, value: n }))),
    counter('baton_watchdog_kills_total', 'Workers signalled as hung by their watchdog.', [{ value: s.watchdogKills ?? 0 }]),
    counter('baton_reloads_total', 'Reloads by result: ok, failed (refused or never ready), reverted (in the soak or the roll).', RESULTS.map((r) => ({ labels: { result: r }, value: c.reloads[r] }))),
    counter('baton_upgrades_total', 'Binary upgrades by result, as the old master saw them: ok, failed (rolled back), reverted (rolled back in the soak).', RESULTS.map((r) => ({ labels: { result: r }, value: c.upgrades[r] }))),
    { name: 'baton_reload_duration_seconds', help: 'How long reloads took, HUP to the answer (the soak included).', type: 'histogram', samples: histogramSamples(c.reloadSeconds) },
    { name: 'baton_upgrade_duration_seconds', help: 'How long binary upgrades took, USR2 to the outcome (the soak included).', type: 'histogram', samples: histogramSamples(c.upgradeSeconds) },
    counter('baton_log_dropped_lines_total', 'Log lines the master could not write (its sink failing).', [{ value: s.log.dropped }]),
    counter('baton_notify_dropped_total', 'sd_notify datagrams dropped unread: not from a worker, or longer than 4096 bytes.', [
      { labels: { reason: 'not_from_worker' }, value: s.notifyDropped?.notFromWorkers ?? 0 },
      { labels: { reason: 'truncated' }, value: s.notifyDropped?.truncated ?? 0 },
    ]),
    ...processFamilies(),
  ];
}

/** The standard process_* metrics (Prometheus' client guidelines), for the master itself. */
function processFamilies(): Family[] {
  const cpu = process.cpuUsage();
  const status = read('/proc/self/status');
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  const maxFds = Number(/^Max open files\s+(\d+)/m.exec(read('/proc/self/limits'))?.[1] ?? NaN);
  let openFds = NaN;
  try {
    openFds = fs.readdirSync('/proc/self/fd').length;
  } catch {
    /* no /proc */
  }
  return [
    counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', [{ value: (cpu.user + cpu.system) / 1e6 }]),
    gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', [{ value: kib('VmRSS') }]),
    gauge('process_virtual_memory_bytes', 'Virtual memory size in bytes.', [{ value: kib('VmSize') }]),
    gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', [{ value: Math.round(Date.now() / 1000 - process.uptime()) }]),
    gauge('process_open_fds', 'Number of open file descriptors.', [{ value: openFds }]),
    gauge('process_max_fds', 'Maximum number of open file descriptors.', [{ value: maxFds }]),
  ];
}

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}
