import fs from 'node:fs';
import { native, type NotifyReceiverHandle } from '../native';
import { parseNotify } from './notify-message';

/** Reads a process's parent pid from /proc; undefined once it has exited. */
export function parentPid(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name in (...) may contain spaces and parens: split after the last ')'
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

export interface NotifySender {
  /** The pid the message came from (SCM_CREDENTIALS). */
  pid: number;
}

/**
 * The master's own NOTIFY_SOCKET, the one its workers write to. An abstract address: no file
 * to clean up, no path-length limit, no RuntimeDirectory permissions in the way. Anyone in the
 * network namespace can send to it, so each message is attributed by the sender's kernel-given
 * pid, never by what it says.
 */
export class NotifyReceiver {
  readonly address: string;
  private handle: NotifyReceiverHandle;

  constructor(
    name: string,
    onMessage: (sender: NotifySender, fields: Map<string, string>) => void,
  ) {
    this.address = `@baton/${name}/${process.pid}/notify`;
    this.handle = native.notifyBind(this.address, (m) => {
      if (m.pid > 0) onMessage({ pid: m.pid }, parseNotify(m.data));
    });
  }

  close(): void {
    this.handle.close();
  }
}

/**
 * Finds which of `pids` sent a message from `sender`: the process itself or one of its
 * descendants (a shell worker running systemd-notify, say), up to a few levels.
 */
export function attribute(sender: number, pids: Set<number>): number | undefined {
  let p: number | undefined = sender;
  for (let depth = 0; p !== undefined && p > 1 && depth < 8; depth++) {
    if (pids.has(p)) return p;
    p = parentPid(p);
  }
  return undefined;
}
