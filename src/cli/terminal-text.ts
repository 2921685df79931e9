// What the client prints of the master's replies (a worker's STATUS=, error messages): no control characters.
import { terminalSafe } from '../log/safe-text';

export { terminalSafe } from '../log/safe-text';

/** A copy of `v` with every string in it made terminalSafe. */
export function terminalSafeDeep<T>(v: T): T {
  if (typeof v === 'string') return terminalSafe(v) as T;
  if (Array.isArray(v)) return v.map((x) => terminalSafeDeep(x)) as T;
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [terminalSafe(k), terminalSafeDeep(x)])) as T;
  }
  return v;
}

/** JSON with DEL and C1 escaped too (JSON.stringify escapes only C0): plain ASCII controls-free output. */
export function jsonForTerminal(v: unknown): string {
  return JSON.stringify(v, null, 2).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
