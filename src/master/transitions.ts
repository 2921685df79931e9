// The master's transition table: for each phase and each event, what the master does and the
// phase it goes to, or why it refuses. It is the only place that decides what is refused, and
// the loop (master.ts) is the only place that writes the phase.
//
//  starting ─ready─▶ running ◀────────────▶ reloading          (a successor: starting ─ready─▶
//     │               │  ▲ ╲                    ▲                 unconfirmed ─confirmed─▶ running)
//     │               │  │  ╲─USR2─▶ upgrading ─┼─ready (manual)─▶ side-by-side
//     │               │  └─failed, rolled back─┘        │             │ (HUP: reloading and back)
//     ▼               ▼              │ took over        │ successor   │ QUIT/TERM/INT: hand over
//  stopping ◀─────────┴──────────────┴──────────────────┴─exits: back─┘
//                                                          to running
// A long operation (reload, upgrade, stop) is an object driven by the events below; what it
// started (a generation, a successor) reports back as an event, never by a promise that
// interleaves with other handlers.
import type { Phase } from '../contract/control';
import type { MasterEvent } from './events';

export type { Phase };
export type EventKind = MasterEvent['kind'];

/** The master's handlers (master.ts), each a few lines, named for what they do. */
export type Handler =
  | 'reload' | 'upgrade' | 'stop' | 'stopAgain' | 'cancelReloadAndStop' | 'cancelUpgradeAndStop' | 'handOverAndStop'
  | 'winch' | 'resize' | 'reopenLogs' | 'status'
  | 'startDone' | 'startFailed' | 'confirmed' | 'confirmedWhileStopping' | 'aborted'
  | 'reloadReady' | 'rollOn' | 'reloadDone' | 'reloadFailed' | 'soakFault' | 'recycleWhileSoaking'
  | 'reportFault' | 'recycleUnconfirmed'
  | 'successorReady' | 'soakedSuccessor' | 'upgradeDone' | 'upgradeDoneWhileStopping' | 'upgradeFailed' | 'upgradeFailedWhileStopping'
  | 'successorGone' | 'successorGoneWhileReloading'
  | 'finishStop' | 'workersChanged' | 'keepStatus'
  | 'recycle' | 'recycleLater';

/** A refusal (its reason), or a handler with the phase it leads to: one, or the few it chooses from. */
export type Row = string | { do: Handler; next?: Phase | readonly Phase[] };

const go = (next: Phase | readonly Phase[], handler: Handler): Row => ({ do: handler, next });
const stay = (handler: Handler): Row => ({ do: handler });

/** Events every phase handles alike. */
const ALWAYS: { [K in EventKind]?: Row } = {
  status: stay('status'),
  'reopen-logs': stay('reopenLogs'),
};

// A worker over its memory or age limit is recycled in running and side-by-side only; elsewhere
// it waits (its generation asks again at its next check).
const LATER = stay('recycleLater');

const NOT_CONFIRMED = 'this master is a successor its predecessor has not confirmed yet';
const BACK = ['running', 'side-by-side'] as const;

/**
 * Per phase: its own rows. An event with no row here or in ALWAYS is ignored: a report of
 * something that no longer matters in that phase (a generation's, after a stop drained it).
 */
const TABLE: { [P in Phase]: { [K in EventKind]?: Row } } = {
  starting: {
    reload: 'the master is starting',
    upgrade: 'the master is starting',
    winch: 'the master is starting',
    resize: 'the master is starting',
    stop: go('stopping', 'stop'),
    'generation-ready': go(['running', 'unconfirmed', 'stopping'], 'startDone'),
    'generation-failed': go('stopping', 'startFailed'),
    aborted: go('stopping', 'aborted'),
    'workers-changed': stay('keepStatus'),
    'recycle-due': LATER,
  },
  unconfirmed: {
    reload: NOT_CONFIRMED,
    upgrade: NOT_CONFIRMED,
    winch: stay('winch'),
    resize: stay('resize'),
    stop: go('stopping', 'stop'),
    confirmed: go('running', 'confirmed'),
    aborted: go('stopping', 'aborted'),
    // systemd hears nothing from an unconfirmed successor
    'workers-changed': stay('keepStatus'),
    // the predecessor hears of it: one soaking us (reload.soakMs) rolls the upgrade back
    'worker-failed': stay('reportFault'),
    'recycle-due': stay('recycleUnconfirmed'),
  },
  running: {
    reload: go('reloading', 'reload'),
    upgrade: go('upgrading', 'upgrade'),
    winch: stay('winch'),
    resize: stay('resize'),
    stop: go('stopping', 'stop'),
    // STATUS= says the workers here; starting, upgrading and stopping keep what they set
    'workers-changed': stay('workersChanged'),
    'recycle-due': stay('recycle'),
  },
  reloading: {
    reload: 'a reload is already under way',
    upgrade: 'a reload is under way',
    winch: 'a reload is under way',
    resize: 'a reload is under way',
    // the reload fails; one in side-by-side: the stop finishes the upgrade as it does there
    stop: go('stopping', 'cancelReloadAndStop'),
    // with reload.soakMs the new generation serves beside the old one first (still reloading)
    // reload.strategy "rolling": its generation is ready with its first worker, the roll goes on
    'generation-ready': go(['reloading', ...BACK], 'reloadReady'),
    'roll-done': go(['reloading', ...BACK], 'reloadReady'),
    'soak-over': go(BACK, 'reloadDone'),
    // a rolling reload restores the slots it replaced first (then reload-failed)
    'generation-failed': go(['reloading', ...BACK], 'reloadFailed'),
    'reload-failed': go(BACK, 'reloadFailed'),
    // a worker of the soaking generation crashed or hung: the reload reverts; any other's: nothing more
    'worker-failed': go(['reloading', ...BACK], 'soakFault'),
    // a worker got ready or exited: a rolling reload moves what it can
    'workers-changed': stay('rollOn'),
    // manual upgrade: the successor beside us exited while we reload
    'successor-gone': stay('successorGoneWhileReloading'),
    // the soaking generation's worker over workers.maxMemory reverts the reload; others wait
    'recycle-due': go(['reloading', ...BACK], 'recycleWhileSoaking'),
  },
  upgrading: {
    reload: 'an upgrade is under way',
    upgrade: 'an upgrade is already under way',
    winch: 'an upgrade is under way',
    resize: 'an upgrade is under way',
    // rolled back first; once handed over, the upgrade's outcome still answers `baton upgrade`
    stop: go('stopping', 'cancelUpgradeAndStop'),
    // auto: handed over (or soaking, reload.soakMs), waiting for the successor to take the control socket; manual: both serve
    'successor-ready': go(['upgrading', 'side-by-side'], 'successorReady'),
    // the successor survived its soak: handed over now
    'soak-over': stay('soakedSuccessor'),
    'took-over': go('stopping', 'upgradeDone'),
    // rolled back (also a successor failing in its soak); or, once handed over, there is no going back: we drain and leave anyway
    'upgrade-failed': go(['running', 'stopping'], 'upgradeFailed'),
    'workers-changed': stay('keepStatus'),
    'recycle-due': LATER,
  },
  'side-by-side': {
    reload: go('reloading', 'reload'),
    upgrade: 'an upgrade is already under way: its successor is ready beside this master (QUIT finishes it)',
    winch: stay('winch'),
    resize: stay('resize'),
    stop: go('stopping', 'handOverAndStop'),
    // the successor exited (QUIT to it): rolled back; with no workers left (WINCH), start some again
    'successor-gone': go(['running', 'reloading'], 'successorGone'),
    'workers-changed': stay('workersChanged'),
    'recycle-due': stay('recycle'),
  },
  stopping: {
    reload: 'the master is stopping',
    upgrade: 'the master is stopping',
    winch: 'the master is stopping',
    resize: 'the master is stopping',
    stop: stay('stopAgain'),
    'pool-empty': stay('finishStop'),
    // a successor confirmed while stopping still takes over (control.sock, its socket files)
    confirmed: stay('confirmedWhileStopping'),
    // stopped while handing over: the upgrade's outcome still answers `baton upgrade`
    'took-over': stay('upgradeDoneWhileStopping'),
    'upgrade-failed': stay('upgradeFailedWhileStopping'),
    'workers-changed': stay('keepStatus'),
    'recycle-due': LATER,
  },
};

/** What the master does with `kind` in `phase`: a row, or undefined for nothing (a stale report). */
export function decide(phase: Phase, kind: EventKind): Row | undefined {
  return TABLE[phase][kind] ?? ALWAYS[kind];
}

export const PHASES = Object.keys(TABLE) as Phase[];

/** The requests an operator makes: every phase accepts or refuses each of them explicitly. */
export const REQUESTS = ['reload', 'upgrade', 'stop', 'winch', 'resize', 'reopen-logs', 'status'] as const satisfies readonly EventKind[];
