// Text from the master (a worker's STATUS=, error messages) is not trusted to be harmless on
// a terminal: escape sequences could rewrite the screen, retitle the window or hide lines.

/** C0 controls, DEL and C1 controls (U+0080–U+009F: a terminal may read U+009B as CSI). */
const CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;
const CONTROLS_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g;

const hex = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** Every control character shown as \xHH; `keepNewlines` for multi-line messages. */
export function terminalSafe(s: string, keepNewlines = false): string {
  return s.replace(keepNewlines ? CONTROLS_BUT_NEWLINE : CONTROLS, hex);
}

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
