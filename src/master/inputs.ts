import type { ControlRequest } from '../contract/control';
import type { MasterEvent, Reply } from './events';

// The master's inputs from outside, as events: its signals and the control socket's requests.

/** Signals and the requests they make (nginx's and gunicorn's meanings). */
const SIGNALS: Record<string, MasterEvent> = {
  SIGHUP: { kind: 'reload', source: 'SIGHUP' },
  SIGUSR2: { kind: 'upgrade', source: 'SIGUSR2' },
  SIGTERM: { kind: 'stop', source: 'SIGTERM', fast: false },
  SIGQUIT: { kind: 'stop', source: 'SIGQUIT', fast: false },
  SIGINT: { kind: 'stop', source: 'SIGINT', fast: true },
  SIGWINCH: { kind: 'winch' },
  SIGUSR1: { kind: 'reopen-logs' },
  SIGTTIN: { kind: 'resize', delta: 1 },
  SIGTTOU: { kind: 'resize', delta: -1 },
};

/** Posts each signal's event from now on; returns what removes the handlers again. */
export function listenToSignals(post: (e: MasterEvent) => void): () => void {
  const handlers = Object.entries(SIGNALS).map(([sig, e]): [string, () => void] => [sig, () => post(e)]);
  for (const [sig, handler] of handlers) process.on(sig, handler);
  return () => handlers.splice(0).forEach(([sig, handler]) => process.off(sig, handler));
}

/** A control request as the event it asks for. */
export function requestEvent(req: ControlRequest, reply: Reply): MasterEvent {
  switch (req.cmd) {
    case 'status':
      return { kind: 'status', reply };
    case 'reload':
      return { kind: 'reload', source: 'control', reply };
    case 'upgrade':
      return { kind: 'upgrade', source: 'control', reply };
    case 'stop':
      return { kind: 'stop', source: `stop requested${req.fast ? ' (fast)' : ''}`, fast: Boolean(req.fast), reply };
  }
}
