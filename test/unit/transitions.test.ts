// The master's transition table (src/master/transitions.ts), over every (phase x event kind)
// pair: what each phase does with each event, which requests it refuses and why. No process,
// no socket: the table is data, checked against the master's handlers and phases.
import { Master } from '../../src/master/master';
import { decide, PHASES, REQUESTS, type EventKind, type Phase, type Row } from '../../src/master/transitions';

/** Every event kind of events.ts. A kind added there and not here fails to compile (see below). */
const KINDS = [
  'reload',
  'upgrade',
  'stop',
  'winch',
  'resize',
  'reopen-logs',
  'status',
  'generation-ready',
  'generation-failed',
  'workers-changed',
  'pool-empty',
  'reload-failed',
  'soak-over',
  'roll-done',
  'worker-failed',
  'successor-ready',
  'took-over',
  'upgrade-failed',
  'successor-gone',
  'confirmed',
  'aborted',
  'recycle-due',
] as const satisfies readonly EventKind[];

/** Every phase of contract/control.ts, likewise. */
const ALL_PHASES = ['starting', 'unconfirmed', 'running', 'reloading', 'upgrading', 'side-by-side', 'stopping'] as const satisfies readonly Phase[];

// Compile-time: the lists above name every EventKind and every Phase (ts-jest type-checks).
type Unlisted<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : Exclude<All, Listed>;
const everyKindListed: Unlisted<EventKind, (typeof KINDS)[number]> = true;
const everyPhaseListed: Unlisted<Phase, (typeof ALL_PHASES)[number]> = true;

/** A row as one line: `refused: why`, `handler` (same phase), `handler -> next` or `handler -> a|b`. */
function show(row: Row | undefined): string {
  if (row === undefined) return 'ignored';
  if (typeof row === 'string') return `refused: ${row}`;
  if (row.next === undefined) return row.do;
  return `${row.do} -> ${typeof row.next === 'string' ? row.next : row.next.join('|')}`;
}

const NOT_CONFIRMED = 'refused: this master is a successor its predecessor has not confirmed yet';
const STARTING = 'refused: the master is starting';
const STOPPING = 'refused: the master is stopping';
const IN_RELOAD = 'refused: a reload is under way';
const IN_UPGRADE = 'refused: an upgrade is under way';

/**
 * The whole table as it is meant to be, per event kind: what each phase does; a phase not
 * named ignores the event (a stale report). Requests are named in every phase.
 */
const EXPECTED: Record<EventKind, Partial<Record<Phase, string>>> = {
  reload: {
    starting: STARTING,
    unconfirmed: NOT_CONFIRMED,
    running: 'reload -> reloading',
    reloading: 'refused: a reload is already under way',
    upgrading: IN_UPGRADE,
    'side-by-side': 'reload -> reloading',
    stopping: STOPPING,
  },
  upgrade: {
    starting: STARTING,
    unconfirmed: NOT_CONFIRMED,
    running: 'upgrade -> upgrading',
    reloading: IN_RELOAD,
    upgrading: 'refused: an upgrade is already under way',
    'side-by-side': 'refused: an upgrade is already under way: its successor is ready beside this master (QUIT finishes it)',
    stopping: STOPPING,
  },
  stop: {
    starting: 'stop -> stopping',
    unconfirmed: 'stop -> stopping',
    running: 'stop -> stopping',
    reloading: 'cancelReloadAndStop -> stopping',
    upgrading: 'cancelUpgradeAndStop -> stopping',
    'side-by-side': 'handOverAndStop -> stopping',
    stopping: 'stopAgain',
  },
  winch: {
    starting: STARTING,
    unconfirmed: 'winch',
    running: 'winch',
    reloading: IN_RELOAD,
    upgrading: IN_UPGRADE,
    'side-by-side': 'winch',
    stopping: STOPPING,
  },
  resize: {
    starting: STARTING,
    unconfirmed: 'resize',
    running: 'resize',
    reloading: IN_RELOAD,
    upgrading: IN_UPGRADE,
    'side-by-side': 'resize',
    stopping: STOPPING,
  },
  'reopen-logs': everywhere('reopenLogs'),
  status: everywhere('status'),
  'workers-changed': {
    starting: 'keepStatus',
    unconfirmed: 'keepStatus',
    running: 'workersChanged',
    // a rolling reload moves what it can
    reloading: 'rollOn',
    upgrading: 'keepStatus',
    'side-by-side': 'workersChanged',
    stopping: 'keepStatus',
  },
  'generation-ready': {
    starting: 'startDone -> running|unconfirmed|stopping',
    reloading: 'reloadReady -> reloading|running|side-by-side',
  },
  'roll-done': { reloading: 'reloadReady -> reloading|running|side-by-side' },
  'soak-over': { reloading: 'reloadDone -> running|side-by-side', upgrading: 'soakedSuccessor' },
  // a worker of a serving generation crashed or hung: only a soak cares (a reload's; an unconfirmed successor tells its predecessor)
  'worker-failed': { reloading: 'soakFault -> reloading|running|side-by-side', unconfirmed: 'reportFault' },
  'generation-failed': {
    starting: 'startFailed -> stopping',
    // a rolling reload gives back the slots it replaced first
    reloading: 'reloadFailed -> reloading|running|side-by-side',
  },
  'pool-empty': { stopping: 'finishStop' },
  'reload-failed': { reloading: 'reloadFailed -> running|side-by-side' },
  'successor-ready': { upgrading: 'successorReady -> upgrading|side-by-side' },
  'took-over': { upgrading: 'upgradeDone -> stopping', stopping: 'upgradeDoneWhileStopping' },
  'upgrade-failed': { upgrading: 'upgradeFailed -> running|stopping', stopping: 'upgradeFailedWhileStopping' },
  'successor-gone': { reloading: 'successorGoneWhileReloading', 'side-by-side': 'successorGone -> running|reloading' },
  confirmed: { unconfirmed: 'confirmed -> running', stopping: 'confirmedWhileStopping' },
  aborted: { starting: 'aborted -> stopping', unconfirmed: 'aborted -> stopping' },
  // a worker over its memory or age limit: recycled while the master serves with nothing else under way
  // (in a reload's soak, the new generation's worker over its memory reverts the reload)
  'recycle-due': {
    ...everywhere('recycleLater'),
    running: 'recycle',
    'side-by-side': 'recycle',
    reloading: 'recycleWhileSoaking -> reloading|running|side-by-side',
    unconfirmed: 'recycleUnconfirmed',
  },
};

function everywhere(handler: string): Record<Phase, string> {
  return Object.fromEntries(ALL_PHASES.map((p) => [p, handler])) as Record<Phase, string>;
}

const pairs = PHASES.flatMap((phase) => KINDS.map((kind) => ({ phase, kind, row: decide(phase, kind) })));

describe('the transition table', () => {
  test('the event kinds and phases listed here are those of events.ts and control.ts', () => {
    expect(everyKindListed).toBe(true);
    expect(everyPhaseListed).toBe(true);
    expect([...PHASES].sort()).toEqual([...ALL_PHASES].sort());
    expect(new Set(KINDS).size).toBe(KINDS.length);
  });

  test('every event kind has a row in some phase: a new kind without rows fails here', () => {
    const known = KINDS.filter((kind) => PHASES.some((phase) => decide(phase, kind) !== undefined));
    expect(known).toEqual([...KINDS]);
  });

  test('every request is handled or refused with a reason in every phase: nothing is silently ignored', () => {
    const silent = PHASES.flatMap((phase) => REQUESTS.filter((kind) => decide(phase, kind) === undefined).map((kind) => `${kind} in ${phase}`));
    expect(silent).toEqual([]);
    const blankReasons = pairs.filter((p) => typeof p.row === 'string' && p.row.trim() === '').map((p) => `${p.kind} in ${p.phase}`);
    expect(blankReasons).toEqual([]);
    expect([...REQUESTS].sort()).toEqual(['reload', 'reopen-logs', 'resize', 'status', 'stop', 'upgrade', 'winch']);
  });

  test('only requests are refused: a report (from the pool, an operation, the predecessor) is handled or ignored', () => {
    const requests: readonly string[] = REQUESTS;
    const refusedReports = pairs.filter((p) => typeof p.row === 'string' && !requests.includes(p.kind)).map((p) => `${p.kind} in ${p.phase}`);
    expect(refusedReports).toEqual([]);
  });

  test('every handler a row names is a method of Master', () => {
    const handlers = new Set(pairs.flatMap((p) => (p.row && typeof p.row !== 'string' ? [p.row.do] : [])));
    const proto = Master.prototype as unknown as Record<string, unknown>;
    const missing = [...handlers].filter((h) => typeof proto[h] !== 'function');
    expect(missing).toEqual([]);
    expect(handlers.size).toBeGreaterThan(10);
  });

  test("every `next` is a phase; a list offers a real choice and never repeats one", () => {
    const bad: string[] = [];
    for (const { phase, kind, row } of pairs) {
      if (!row || typeof row === 'string' || row.next === undefined) continue;
      const next: readonly string[] = typeof row.next === 'string' ? [row.next] : row.next;
      for (const n of next) if (!(PHASES as string[]).includes(n)) bad.push(`${kind} in ${phase}: ${n} is no phase`);
      if (typeof row.next !== 'string' && row.next.length < 2) bad.push(`${kind} in ${phase}: a list of one`);
      if (new Set(next).size !== next.length) bad.push(`${kind} in ${phase}: a phase twice`);
    }
    expect(bad).toEqual([]);
  });

  test('stop is accepted in every phase and leads to stopping; status and reopen-logs never change the phase', () => {
    for (const phase of PHASES) {
      const stop = decide(phase, 'stop');
      expect(typeof stop).toBe('object');
      const next = (stop as Exclude<Row, string>).next;
      expect(next ?? phase).toBe('stopping');
      for (const kind of ['status', 'reopen-logs'] as const) expect(decide(phase, kind)).toEqual({ do: kind === 'status' ? 'status' : 'reopenLogs' });
    }
  });

  test('refusals per phase, in words', () => {
    const refusals = (phase: Phase) =>
      Object.fromEntries(REQUESTS.flatMap((kind) => {
        const row = decide(phase, kind);
        return typeof row === 'string' ? [[kind, row]] : [];
      }));
    expect(refusals('running')).toEqual({});
    expect(refusals('reloading')).toEqual({
      reload: 'a reload is already under way',
      upgrade: 'a reload is under way',
      winch: 'a reload is under way',
      resize: 'a reload is under way',
    });
    expect(refusals('upgrading')).toEqual({
      reload: 'an upgrade is under way',
      upgrade: 'an upgrade is already under way',
      winch: 'an upgrade is under way',
      resize: 'an upgrade is under way',
    });
    expect(refusals('side-by-side')).toEqual({
      upgrade: 'an upgrade is already under way: its successor is ready beside this master (QUIT finishes it)',
    });
    for (const phase of ['starting', 'stopping'] as const) {
      const why = `the master is ${phase}`;
      expect(refusals(phase)).toEqual({ reload: why, upgrade: why, winch: why, resize: why });
    }
    const unconfirmed = 'this master is a successor its predecessor has not confirmed yet';
    expect(refusals('unconfirmed')).toEqual({ reload: unconfirmed, upgrade: unconfirmed });
  });

  test('the whole table, pair by pair, is as EXPECTED says', () => {
    const actual: Record<string, Record<string, string>> = {};
    for (const { phase, kind, row } of pairs) {
      if (row !== undefined) (actual[kind] ??= {})[phase] = show(row);
    }
    expect(actual).toEqual(EXPECTED);
  });
});
