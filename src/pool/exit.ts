import type { ExitWhy } from '../contract/control';

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  error?: string;
  /** Still running a while after SIGKILL (another uid, or stuck in the kernel): given up on. */
  stuck?: true;
}

/** A slot's last exit, as the pool keeps it (for status). */
export interface SlotExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** On the master's clock. */
  at: number;
  why: ExitWhy;
  /** The generation of the worker that exited. */
  generation: number;
}

export function describeExit(e: WorkerExit): string {
  if (e.error) return `could not be started: ${e.error}`;
  if (e.stuck) return 'did not die of SIGKILL (another uid, or stuck in the kernel): given up on';
  if (e.signal) return `was killed by ${e.signal}`;
  if (e.code === 127) return 'exited with status 127 (command not found)';
  if (e.code === 126) return 'exited with status 126 (command not executable)';
  return `exited with status ${e.code}`;
}
