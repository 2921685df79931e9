// The messages of the private channel between a predecessor and its successor (upgrade/channel.ts):
// a contract between two versions of baton, as upgrade-env.ts is.

// A process is named by its pid and its start time (`startTicks`, ProcessId in
// system/process.ts): the predecessor signals nothing whose pid has been reused since. Each
// side reads its own start time, and a worker's right after spawn(), before it can have been
// reaped; a baton that sends none (0.1.0) is looked up on arrival instead.
export type SuccessorMessage =
  | { t: 'hello'; pid: number; startTicks?: number }
  | { t: 'worker'; pid: number; startTicks?: number }
  /** A worker it reported whose process group is gone (or given up on): not the predecessor's to stop any more. */
  | { t: 'worker-gone'; pid: number }
  /** Files the successor made (its control socket, unix listeners' files, its pidfile's name): a dead successor's are the predecessor's to remove. */
  | { t: 'files'; sockets: string[]; pidfile?: string }
  | { t: 'ready'; generation: number }
  | { t: 'failed'; reason: string }
  /**
   * Ready, unconfirmed: one of its workers exited, hung or went over workers.maxMemory. A
   * predecessor soaking it (reload.soakMs) rolls the upgrade back; an older one ignores it.
   */
  | { t: 'worker-failed'; reason: string }
  /** Confirmed, and control.sock is the successor's: the last message; the successor closes the channel after it. */
  | { t: 'master' };

/** `confirm` says the predecessor's next generation number: the successor numbers on from there (a HUP in side-by-side used some). */
export type PredecessorMessage = { t: 'confirm'; nextGeneration?: number } | { t: 'abort'; reason: string };
