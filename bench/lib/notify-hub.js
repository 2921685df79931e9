'use strict';
// The harness's own NOTIFY_SOCKET, as systemd would give one to baton: every datagram is
// kept with its kernel-given sender pid and the time it arrived, so "ready" and "reloaded"
// are read off the master's own READY=1, not guessed by polling.
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const dist = path.join(__dirname, '../../dist');
const native = require(path.join(dist, 'native/baton_native.node'));
const { parseNotify } = require(path.join(dist, 'systemd/notify-message.js'));
const { waitFor } = require('./sys');

class NotifyHub {
  constructor() {
    this.address = `@baton-bench/${process.pid}/notify`;
    this.messages = [];
    this.handle = native.notifyBind(this.address, (m) => {
      this.messages.push({ at: performance.now(), pid: m.pid, fields: parseNotify(m.data) });
    });
  }

  /** The first message after index `from` that matches, waiting for it. */
  next(what, from, match, timeoutMs = 60000) {
    return waitFor(what, () => this.messages.slice(from).find(match), timeoutMs, 2);
  }

  /** Waits for READY=1 from every one of `pids` after index `from`; resolves to the last of them. */
  allReady(what, from, pids, timeoutMs = 60000) {
    return waitFor(
      what,
      () => {
        const ready = this.messages.slice(from).filter((m) => pids.has(m.pid) && m.fields.get('READY') === '1');
        return new Set(ready.map((m) => m.pid)).size >= pids.size ? ready[ready.length - 1] : undefined;
      },
      timeoutMs,
      2,
    );
  }

  get mark() {
    return this.messages.length;
  }

  close() {
    this.handle.close();
  }
}

module.exports = { NotifyHub, native };
