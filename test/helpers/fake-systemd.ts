import path from 'node:path';
import { native, type NotifyReceiverHandle } from '../../src/native';
import { parseNotify } from '../../src/systemd/notify-message';
import { parentPid } from '../../src/system/process';
import { waitFor } from './proc';

export interface Received {
  at: number;
  pid: number;
  fields: Map<string, string>;
  /** For MAINPID=: the named process's parent, read the moment the message arrived. */
  mainPidParent?: number;
}

/** A stand-in for systemd's notify socket: records every datagram with its sender and time. */
export class FakeSystemd {
  readonly socket: string;
  readonly messages: Received[] = [];
  private handle: NotifyReceiverHandle;

  constructor(dir: string) {
    this.socket = path.join(dir, 'notify.sock');
    this.handle = native.notifyBind(this.socket, (m) => {
      const fields = parseNotify(m.data);
      const main = fields.get('MAINPID');
      this.messages.push({ at: Date.now(), pid: m.pid, fields, mainPidParent: main ? parentPid(Number(main)) : undefined });
    });
  }

  with(key: string, value?: string): Received[] {
    return this.messages.filter((m) => m.fields.has(key) && (value === undefined || m.fields.get(key) === value));
  }

  waitFor(key: string, value?: string, count = 1, timeoutMs = 20000): Promise<Received[]> {
    return waitFor(`${count} x ${key}=${value ?? '*'} on the fake NOTIFY_SOCKET`, () => {
      const got = this.with(key, value);
      return got.length >= count ? got : undefined;
    }, timeoutMs);
  }

  close(): void {
    this.handle.close();
  }
}
