import { NotifyOutbox } from './outbox';
import { pingEveryMs, watchdogUsecFor } from '../contract/watchdog';
import { formatNotify, monotonicUsec } from './notify-message';

/** How often EXTEND_TIMEOUT_USEC is renewed while a drain or a reload goes on. */
const EXTEND_EVERY_MS = 5000;

/**
 * The master's side of sd_notify(3), towards systemd (or whoever set NOTIFY_SOCKET).
 * Without NOTIFY_SOCKET every call is a no-op, as with sd_notify.
 */
export class SystemdNotifier {
  readonly socket: string | undefined;
  private watchdogTimer: NodeJS.Timeout | null = null;
  private extendTimer: NodeJS.Timeout | null = null;
  readonly watchdogUsec: number;
  /** $FDSTORE: systemd >= 254 sets it to FileDescriptorStoreMax= when the unit has a store; 0 otherwise. */
  readonly fdStoreMax: number;
  /** An unconfirmed successor is not systemd's main process yet: it keeps quiet until confirmed. */
  muted = false;
  private lastStatus = '';
  /** Never waits for systemd: what finds its queue full is sent a little later, in order. */
  private readonly outbox: NotifyOutbox | undefined;

  constructor(
    env: NodeJS.ProcessEnv,
    private readonly onError: (message: string) => void,
  ) {
    this.socket = env.NOTIFY_SOCKET || undefined;
    this.watchdogUsec = watchdogUsecFor(env);
    const max = Number(env.FDSTORE);
    this.fdStoreMax = Number.isInteger(max) && max > 0 ? max : 0;
    this.outbox = this.socket ? new NotifyOutbox(this.socket, onError) : undefined;
    // Children must not talk to systemd in our name; workers get the master's own socket instead.
    delete env.NOTIFY_SOCKET;
    delete env.WATCHDOG_USEC;
    delete env.WATCHDOG_PID;
    delete env.FDSTORE;
  }

  /**
   * One message; `fds` go along as SCM_RIGHTS (FDSTORE=1). True when sent, or queued behind a
   * full receiver; false when not sent (muted, no socket, failed).
   */
  send(fields: Record<string, string | number>, fds?: number[]): boolean {
    if (!this.outbox || this.muted) return false;
    try {
      this.outbox.send(formatNotify(fields), fds);
      return true;
    } catch (e) {
      this.onError(`sd_notify to ${this.socket} failed: ${(e as Error).message}`);
      return false;
    }
  }

  /** The variables a successor master needs to speak to systemd once it is the main process. */
  envForSuccessor(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    if (this.socket) env.NOTIFY_SOCKET = this.socket;
    if (this.watchdogUsec) env.WATCHDOG_USEC = String(this.watchdogUsec);
    if (this.fdStoreMax) env.FDSTORE = String(this.fdStoreMax);
    return env;
  }

  ready(status: string): void {
    this.lastStatus = status;
    this.send({ READY: 1, STATUS: status });
  }

  status(status: string): void {
    if (status === this.lastStatus) return;
    this.lastStatus = status;
    this.send({ STATUS: status });
  }

  /** Type=notify-reload (systemd >= 253) wants RELOADING=1 with the time the reload began. */
  reloading(status: string): void {
    this.lastStatus = status;
    this.send({ RELOADING: 1, MONOTONIC_USEC: monotonicUsec().toString(), STATUS: status });
  }

  stopping(status: string): void {
    this.lastStatus = status;
    this.send({ STOPPING: 1, STATUS: status });
  }

  /** Asks systemd for `ms` more than its start/stop/reload timeout would allow. */
  extendTimeout(ms: number): void {
    this.send({ EXTEND_TIMEOUT_USEC: Math.ceil(ms * 1000) });
  }

  /** While something long goes on (a reload, a drain), keeps systemd's timeout from firing first. */
  extendFor(deadlineMs: number): void {
    this.stopExtending();
    const until = Date.now() + deadlineMs;
    const extend = () => this.extendTimeout(Math.max(until - Date.now(), 0) + 2 * EXTEND_EVERY_MS);
    extend();
    this.extendTimer = setInterval(extend, EXTEND_EVERY_MS);
    this.extendTimer.unref();
  }

  stopExtending(): void {
    if (this.extendTimer) clearInterval(this.extendTimer);
    this.extendTimer = null;
  }

  /** Pings the watchdog at half its period while the master lives, if systemd asked for one. */
  startWatchdog(): void {
    if (!this.watchdogUsec || this.watchdogTimer) return;
    this.send({ WATCHDOG: 1 });
    this.watchdogTimer = setInterval(() => this.send({ WATCHDOG: 1 }), pingEveryMs(this.watchdogUsec));
    this.watchdogTimer.unref();
  }

  stopWatchdog(): void {
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    this.watchdogTimer = null;
  }
}
