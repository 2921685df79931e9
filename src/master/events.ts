import type { ControlReply } from '../contract/control';
import type { PoolEvent } from '../pool/generation';

/** Where a request came from, for the log: a signal's name, 'control' (the socket) or 'rollback'. */
export type Source = string;

/** Answers a control request; requests from signals have none. */
export type Reply = (r: ControlReply) => void;

/** Every input of the master. The loop runs one at a time; transitions.ts says what each does. */
export type MasterEvent =
  // asked for, by a signal or over the control socket
  | { kind: 'reload'; source: Source; reply?: Reply }
  | { kind: 'upgrade'; source: Source; reply?: Reply }
  | { kind: 'stop'; source: Source; fast: boolean; reply?: Reply }
  | { kind: 'winch' }
  | { kind: 'resize'; delta: 1 | -1 }
  | { kind: 'reopen-logs' }
  | { kind: 'status'; reply: Reply }
  // reported by the pool
  | PoolEvent
  // reported by an operation under way
  /** `reverted`: a rolling reload's new workers failed and the replaced slots were restored. */
  | { kind: 'reload-failed'; reason: string; reverted?: boolean }
  /** A rolling reload has moved every slot to generation `id`. */
  | { kind: 'roll-done'; id: number }
  /** The soak of generation `id` is over: the reload commits, or the upgrade hands over to the successor that started it. */
  | { kind: 'soak-over'; id: number }
  | { kind: 'successor-ready' }
  | { kind: 'took-over' }
  /** `reverted`: the ready successor failed in its soak. */
  | { kind: 'upgrade-failed'; reason: string; reverted?: boolean }
  | { kind: 'successor-gone' }
  // reported by our predecessor, while we are its successor
  /** `nextGeneration`: the predecessor's next number (an older predecessor sends none). */
  | { kind: 'confirmed'; nextGeneration?: number }
  | { kind: 'aborted'; reason: string };

export type EventOf<K extends MasterEvent['kind']> = Extract<MasterEvent, { kind: K }>;
