import type { Config } from '../config/types';
import type { Listener } from '../sockets/listeners';

// systemd's file descriptor store (sd_notify(3) FDSTORE=1, systemd.service(5)
// FileDescriptorStoreMax=): the master hands systemd a copy of every socket it bound itself.
// systemd keeps the copies while the service restarts (a crash with Restart=, or `systemctl
// restart`), so connections queue in them meanwhile instead of being refused, and passes them
// back in LISTEN_FDS named by FDNAME; it drops them when the service stops for good.

/** One sd_notify message with `fds` as SCM_RIGHTS; false when nothing was sent (muted, no NOTIFY_SOCKET). */
export type Notify = (fields: Record<string, string | number>, fds?: number[]) => boolean;

export class FdStore {
  /** Per name, the listener systemd holds for this master, as far as it knows. */
  private readonly held = new Map<string, Listener>();

  constructor(
    private readonly notify: Notify,
    private readonly log: { info(m: string): void; warn(m: string): void },
    /** systemd's FileDescriptorStoreMax= ($FDSTORE), 0 when not said. */
    private readonly max = 0,
  ) {}

  /** Is the store on: the config's `fdStore`, else whether systemd said it has one ($FDSTORE). */
  on(cfg: Config): boolean {
    return cfg.fdStore ?? this.max > 0;
  }

  /**
   * Takes a socket out of the store before it is closed (a start that replaces or drops it):
   * systemd reads notify messages in order and closes its copy, which frees the address.
   */
  release(name: string): void {
    this.remove(name);
    this.held.delete(name);
  }

  /** FDSTOREREMOVE=1 for `name`; false when it could not be said (muted, no NOTIFY_SOCKET). */
  private remove(name: string): boolean {
    if (!this.notify({ FDSTOREREMOVE: 1, FDNAME: name })) return false;
    this.log.info(`systemd's FD store: '${name}' removed (FDSTOREREMOVE=1)`);
    return true;
  }

  /** Inherited listeners systemd may hold (taken back from the store, or a predecessor's, which stored them). */
  mayHold(ls: Listener[]): void {
    for (const l of ls) this.held.set(l.name, l);
  }

  /** Does systemd hold this listener's socket for us (it outlives our stop while the service restarts)? */
  holds(l: Listener): boolean {
    return this.held.get(l.name) === l;
  }

  /**
   * Makes the store hold exactly the listeners of `ls` that baton bound (none when off): a name
   * held for another socket (dropped or replaced) is removed first, then what is missing is
   * stored. `resend`: store every one again (a confirmed successor: systemd drops a copy of a
   * socket it already holds, and the predecessor may not have stored them).
   */
  sync(ls: Listener[], on: boolean, resend = false): void {
    const want = new Map(on ? ls.filter((l) => l.source !== 'systemd' && l.fds.length > 0).map((l) => [l.name, l]) : []);
    for (const [name, l] of this.held) {
      if (want.get(name) !== l && this.remove(name)) this.held.delete(name);
    }
    for (const [name, l] of want) {
      if (this.held.get(name) === l && !resend) continue;
      if (!this.notify({ FDSTORE: 1, FDNAME: name }, l.fds)) continue;
      this.held.set(name, l);
      this.log.info(`systemd's FD store: '${name}' stored (FDSTORE=1, fd ${l.fds.join(',')})`);
    }
    const fds = [...want.values()].reduce((n, l) => n + l.fds.length, 0);
    if (this.max > 0 && fds > this.max) {
      this.log.warn(`systemd's FD store: ${fds} socket(s) to store but FileDescriptorStoreMax= is ${this.max}: systemd drops the rest (raise it on the unit)`);
    }
  }
}
