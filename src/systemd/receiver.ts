import { native, type NotifyMessage, type NotifyReceiverHandle } from '../native';
import { parentPid } from '../system/process';
import { parseNotify } from './notify-message';
import type { NotifyDropped } from '../contract/control';

export interface NotifySender {
  /** The pid the message came from (SCM_CREDENTIALS). */
  pid: number;
  /** The worker it counts for: `pid` itself or the worker it descends from. */
  worker: number;
  /** Longer than 4096 bytes: cut by the kernel, so its fields are empty (none may be acted on). */
  truncated: boolean;
}

const STRANGER_MS = 500;

/** The unguessable part of the address: nobody can bind it before us (abstract names have no permissions). */
export const randomTag = (): string => native.randomBytes(16).toString('hex');

/**
 * The master's own NOTIFY_SOCKET, the one its workers write to. An abstract address: no file
 * to clean up, no path-length limit, no RuntimeDirectory permissions in the way. No
 * permissions apply either: any local user (in the network namespace) can bind a name first,
 * so the name is random and a taken one is skipped; and anyone can send to it (the name shows
 * in /proc/net/unix), so a message counts only when the kernel-given sender pid is a worker or
 * a worker's descendant, and anything else is dropped before it is read.
 */
export class NotifyReceiver {
  readonly address: string;
  readonly dropped: NotifyDropped = { notFromWorkers: 0, truncated: 0 };
  private handle: NotifyReceiverHandle;
  /** Senders found not to descend from a worker: pid -> until when that is taken as known (see worker()). */
  private strangers = new Map<number, number>();

  constructor(
    name: string,
    workers: { has(pid: number): boolean },
    onMessage: (sender: NotifySender, fields: Map<string, string>) => void,
    tag: () => string = randomTag,
  ) {
    const prefix = `@baton/${name.replace(/[^\w.-]/g, '_').slice(0, 40)}/${process.pid}/`;
    const receive = (m: NotifyMessage) => {
      const worker = m.pid > 0 ? this.worker(m.pid, workers) : undefined;
      if (worker === undefined) {
        this.dropped.notFromWorkers++;
        return;
      }
      if (m.truncated) this.dropped.truncated++;
      onMessage({ pid: m.pid, worker, truncated: m.truncated }, m.truncated ? new Map() : parseNotify(m.data));
    };
    [this.address, this.handle] = bindFree(prefix, tag, receive);
  }

  /**
   * attribute(), but a flood from one process costs no /proc read per message: a process found
   * outside every worker's tree stays outside (an orphan is re-parented upwards, to a subreaper
   * or init, never into a worker), so its pid is remembered for STRANGER_MS. Only if that pid
   * were reused by a worker's descendant within STRANGER_MS (all pids cycled meanwhile) would a
   * message be lost; a worker's own messages never are (it is checked first).
   */
  private worker(pid: number, workers: { has(pid: number): boolean }): number | undefined {
    if (workers.has(pid)) return pid;
    const now = Date.now();
    if ((this.strangers.get(pid) ?? 0) > now) return undefined;
    const w = attribute(pid, workers);
    if (w === undefined) {
      if (this.strangers.size >= 4096) this.strangers.clear();
      this.strangers.set(pid, now + STRANGER_MS);
    }
    return w;
  }

  close(): void {
    this.handle.close();
  }
}

/** Binds prefix+tag(), with a new tag while the name is taken (by chance or by someone else). */
function bindFree(prefix: string, tag: () => string, receive: (m: NotifyMessage) => void): [string, NotifyReceiverHandle] {
  for (let attempt = 1; ; attempt++) {
    const address = prefix + tag();
    try {
      return [address, native.notifyBind(address, receive)];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 16) throw e;
    }
  }
}

/**
 * Finds which of `pids` sent a message from `sender`: the process itself or one of its
 * descendants (a shell worker running systemd-notify, say), up to a few levels.
 */
export function attribute(sender: number, pids: { has(pid: number): boolean }): number | undefined {
  let p: number | undefined = sender;
  for (let depth = 0; p !== undefined && p > 1 && depth < 8; depth++) {
    if (pids.has(p)) return p;
    p = parentPid(p);
  }
  return undefined;
}
