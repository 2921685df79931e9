import path from 'node:path';
import type { SocketOptions } from './socket-options';
import type { ListenerSource } from './upgrade-env';

// The control protocol: on the master's control.sock (0600, one request per connection), the
// client sends one request as a JSON line (json-lines.ts) and the master answers with one.
// Shared by the master, the CLI and the tests.

export type ControlRequest =
  | { cmd: 'status' }
  | { cmd: 'reload' }
  | { cmd: 'upgrade' }
  /** fast: SIGKILL the workers now instead of stopping them gracefully. */
  | { cmd: 'stop'; fast?: boolean };

/** The master's phase, as `baton status` shows it. */
export type Phase =
  | 'starting'
  /** A successor its predecessor has not confirmed yet: it serves, but does not speak to systemd. */
  | 'unconfirmed'
  | 'running'
  | 'reloading'
  | 'upgrading'
  /** Manual upgrade: the successor is ready beside this master, which still serves. */
  | 'side-by-side'
  | 'stopping';

/** Why a worker exited: by itself (crash), hung (watchdog), recycled (memory, age), or stopped by baton (reload, stop, resize: TTOU). */
export type ExitWhy = 'crash' | 'watchdog' | 'memory' | 'age' | 'reload' | 'stop' | 'resize';

/** A worker's exit, as status shows it. */
export interface LastExit {
  /** Its exit status; null when a signal killed it (or it could not be started). */
  code: number | null;
  signal: string | null;
  /** When (ISO 8601). */
  at: string;
  why: ExitWhy;
}

/** What a worker's whole process group holds now (its leader and everything it started that stayed in the group). */
export interface WorkerMemory {
  rssBytes: number;
  /** Proportional set size (/proc/PID/smaps_rollup Pss:), shared pages split; null where smaps_rollup cannot be read. */
  pssBytes: number | null;
  /** Live processes in the group. */
  processes: number;
}

export interface WorkerCpu {
  /** Percent of one core since the previous status (at least a second before), or since the worker started. */
  percent: number;
  /** CPU time of the processes now in the group (user + system). */
  seconds: number;
}

export interface WorkerStatus {
  slot: number;
  pid: number;
  state: 'starting' | 'ready' | 'stopping' | 'exited';
  restarts: number;
  uptimeMs: number;
  /** The worker's last STATUS= */
  status?: string;
  /** Its watchdog period (workers.watchdogMs, or the worker's own WATCHDOG_USEC=); absent when off. */
  watchdogMs?: number;
  /** Absent when its process group could not be read (gone a moment ago), or from an older master. */
  memory?: WorkerMemory;
  cpu?: WorkerCpu;
  /** The last exit of a worker in this slot (this generation's or an older one's). */
  lastExit?: LastExit;
  /** Why it is being recycled, while its replacement (the same slot, state starting) gets ready. */
  recycling?: 'memory' | 'age';
}

/** A slot waiting out its crash backoff: no worker runs in it until nextStartAt. */
export interface BackoffSlot {
  slot: number;
  /** ISO 8601. */
  nextStartAt: string;
  lastExit: LastExit;
}

export interface GenerationStatus {
  id: number;
  state: 'starting' | 'serving' | 'draining' | 'failed';
  /** Workers wanted. */
  count: number;
  /** Workers of this generation its watchdog signalled as hung (a 0.1.0 master has none). */
  watchdogKills?: number;
  /** Workers recycled (workers.maxMemory, workers.maxAgeMs), replaced first (an older master has none). */
  recycles?: { memory: number; age: number };
  workers: WorkerStatus[];
  /** Slots whose worker crashed, waiting to be started again (absent from an older master). */
  backoff?: BackoffSlot[];
}

export interface ListenerStatus {
  name: string;
  source: ListenerSource;
  /** One per fd: "127.0.0.1:8080", "[::1]:8080", "/run/x.sock", or "(closed)". */
  addresses: string[];
  fds: number[];
  /** One per fd: the socket's options as the kernel reports them (a 0.1.0 master has none). */
  options?: SocketOptionsStatus[];
}

/**
 * listeners[]' option names; buffer sizes as SO_RCVBUF/SO_SNDBUF report them (twice the size
 * set, socket(7)); a unix socket: its buffers, and its file's `mode` (octal), `uid`, `gid`.
 */
export type SocketOptionsStatus = SocketOptions & { mode?: string; uid?: number; gid?: number };

export interface LastReload {
  at: string;
  ok: boolean;
  generation?: number;
  error?: string;
  /** The new generation was ready and failed inside reload.soakMs: stopped, the old one kept serving. */
  reverted?: boolean;
  ms: number;
}

export interface LastUpgrade {
  at: string;
  ok: boolean;
  /** The successor's pid, once it had one. */
  successor?: number;
  error?: string;
  /** The successor was ready, then failed in its soak (reload.soakMs): this master kept the service. */
  reverted?: boolean;
  ms: number;
}

/** An upgrade attempt, seen from the predecessor (upgrade/successor.ts). */
export type SuccessorState = 'starting' | 'ready' | 'confirmed' | 'failed';

/** Messages dropped unread, for status. */
export interface NotifyDropped {
  /** From processes that are neither a worker nor a worker's descendant. */
  notFromWorkers: number;
  /** Longer than 4096 bytes (cut by the kernel), from workers. */
  truncated: number;
}

/** What `baton status` shows of the log sink. */
export interface LogSinkStatus {
  /** Where lines go: "stderr (pipe)", "journal", "file /var/log/x.log", ... */
  target: string;
  /** Lines dropped since the master started. */
  dropped: number;
  /** The outage in progress: lines dropped since the last line that was written. */
  failing: { since: string; dropped: number; error: string } | null;
  lastError: { at: string; error: string } | null;
}

export interface StatusReply {
  ok: true;
  name: string;
  /** The version the master runs (the installed one may differ). */
  version: string;
  pid: number;
  /** The config file. */
  config: string;
  phase: Phase;
  uptimeMs: number;
  /** The master's own memory and CPU (absent from an older master). */
  master?: { rssBytes: number; cpuPercent: number; cpuSeconds: number };
  /** The serving generation; null before the first is ready and after WINCH. */
  generation: number | null;
  generations: GenerationStatus[];
  /** workers.count as configured, and the number it gave when the config was loaded (TTIN/TTOU change a generation's own count); a 0.1.x master has none. */
  workers?: { count: number | 'auto'; resolved: number; /** How "auto" found it: "4 CPUs, affinity 0-3, cgroup quota none". */ auto?: string };
  /** Workers signalled as hung by their watchdog since this master started, in every generation (a 0.1.0 master has none). */
  watchdogKills?: number;
  listeners: ListenerStatus[];
  lastReload: LastReload | null;
  /**
   * A reload (or an auto upgrade: the successor's first generation) whose new generation is
   * ready and serving beside the old one until its soak ends (reload.soakMs).
   */
  soak?: { of: 'reload' | 'upgrade'; generation: number; endsAt: string };
  /** Notifications dropped unread: not from a worker, or longer than 4096 bytes. */
  notifyDropped?: NotifyDropped;
  upgrade: {
    state: 'none' | 'unconfirmed successor' | `successor ${SuccessorState}`;
    successorPid?: number;
    last: LastUpgrade | null;
  };
  /** The line systemd shows as STATUS=. */
  statusLine: string;
  /** The log sink, and what a failing one dropped. */
  log: LogSinkStatus;
}

export interface ReloadReply {
  ok: true;
  /** The generation now serving. */
  generation: number;
  ms: number;
}

export interface UpgradeReply {
  ok: true;
  oldPid: number;
  newPid: number;
  ms: number;
  /** Manual mode: the successor is ready beside the old master, which still serves. */
  manual: boolean;
}

export interface StopReply {
  ok: true;
  /** The master that is stopping. */
  pid: number;
  /** A manual upgrade's old master, stopped side by side: it hands over to this successor, which goes on serving. */
  handedOverTo?: number;
}

/** A refusal or a failure, whatever the request. */
export interface ErrorReply {
  ok: false;
  error: string;
}

interface Replies {
  status: StatusReply;
  reload: ReloadReply;
  upgrade: UpgradeReply;
  stop: StopReply;
}

/** What the master answers to `R`. */
export type ReplyTo<R extends ControlRequest> = Replies[R['cmd']] | ErrorReply;

export type ControlReply = ReplyTo<ControlRequest>;

const COMMANDS: ReadonlySet<string> = new Set<keyof Replies>(['status', 'reload', 'upgrade', 'stop']);

/** A request as it arrived (one parsed JSON line): the request, or why it is none. */
export function toControlRequest(v: unknown): ControlRequest | { error: string } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { error: 'malformed request: not a JSON object' };
  const { cmd, fast } = v as { cmd?: unknown; fast?: unknown };
  if (typeof cmd !== 'string' || !COMMANDS.has(cmd)) return { error: `unknown command ${JSON.stringify(cmd) ?? 'undefined'}` };
  if (cmd !== 'stop') return { cmd } as ControlRequest;
  if (fast !== undefined && typeof fast !== 'boolean') return { error: `malformed request: "fast" must be true or false` };
  return fast === undefined ? { cmd } : { cmd, fast };
}

/** Whether an answer as it arrived (one parsed JSON line) has the shape of a reply. */
export function isControlReply(v: unknown): v is ControlReply {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const { ok, error } = v as { ok?: unknown; error?: unknown };
  return ok === true || (ok === false && typeof error === 'string');
}

export function controlSocketPath(runtimeDir: string): string {
  return path.join(runtimeDir, 'control.sock');
}
