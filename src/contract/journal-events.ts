// baton's own events in the journal (docs/contract.md, "Journal events"): a MESSAGE_ID per kind,
// fixed for good (journalctl MESSAGE_ID=… finds them across versions; the catalog,
// packaging/baton.catalog, explains each under `journalctl -x`), and the fields that say which
// generation, slot and worker.

export const EVENT_IDS = {
  'reload-started': '722f1fcf7b4441129639018972268177',
  'reload-done': '2ee7b0d1ad9542daafa7e874318a4b97',
  'reload-failed': '166770d814034b63be63401e8358634d',
  'reload-refused': 'e1616365b23a4e19b9f85075014a2422',
  'reload-reverted': '9763ca8dfbf146f2bab0bb6716d5e22e',
  'upgrade-started': '9a8f8669b4d1454b80a3ace7a8b4ac00',
  'upgrade-done': 'ec2929ce50f64cf3843f5d7e6e102357',
  'upgrade-rolled-back': 'ca61c08da32a4e9cb5ff63947fa10e02',
  'upgrade-refused': 'ddb3e4b6deff4c70b68c2f8fd171b8ab',
  'worker-exited': '7ca3342e1b8b48fc8fa57d5ba80c73c5',
  'worker-crashed': 'afcbfbceca2040d1b39ed0669174a6d9',
  'watchdog-kill': '006fdf98dd4444c88ea8ce1674c70064',
  recycle: '1d662191f4ba439ca793826e3549ef00',
} as const;

export type EventKind = keyof typeof EVENT_IDS;

/** An event a log line is: its kind, and what it is about (each becomes a BATON_* field). */
export interface LogEvent {
  kind: EventKind;
  generation?: number;
  slot?: number;
  /** The worker's pid (BATON_WORKER_PID). */
  pid?: number;
  /** An upgrade's successor master (BATON_SUCCESSOR_PID). */
  successor?: number;
}

/** The journal fields of `e` beside MESSAGE=, PRIORITY= and SYSLOG_IDENTIFIER=. */
export function eventFields(e: LogEvent): Array<[string, string]> {
  const out: Array<[string, string]> = [['MESSAGE_ID', EVENT_IDS[e.kind]], ['BATON_EVENT', e.kind]];
  if (e.generation !== undefined) out.push(['BATON_GENERATION', String(e.generation)]);
  if (e.slot !== undefined) out.push(['BATON_SLOT', String(e.slot)]);
  if (e.pid !== undefined) out.push(['BATON_WORKER_PID', String(e.pid)]);
  if (e.successor !== undefined) out.push(['BATON_SUCCESSOR_PID', String(e.successor)]);
  return out;
}
